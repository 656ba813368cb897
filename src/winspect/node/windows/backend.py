"""The Windows node backend: pktmon, vfpctrl and hnsdiag behind the NodeBackend interface.

It owns tool resolution (`--tools-dir`, env `WINSPECT_TOOLS_DIR`, PATH),
the tool runner, and how a capture runs on the node (winspect.node.windows.
capture); the server core owns validation and the capture's life.
"""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from collections.abc import Mapping
from pathlib import Path

from winspect.node.errors import ToolUnavailable
from winspect.node.types import (
    CaptureSpec,
    CountersResult,
    HnsKind,
    Operation,
    OperationAvailability,
    PlatformInfo,
    PodTarget,
)
from winspect.node.windows.capture import PktmonCapture
from winspect.node.windows.capture_prep import prepare_capture
from winspect.node.windows.file_capture import DEFAULT_MAX_LOG_BYTES
from winspect.node.windows.file_version import file_version
from winspect.node.windows.hns import Hnsdiag
from winspect.node.windows.pktmon import Pktmon
from winspect.node.windows.pktmon_owner import PktmonOwner, RecordStore
from winspect.node.windows.pktmon_probe import OLD, WHY_MISSING, PktmonCapabilities, probe
from winspect.node.windows.platform_info import platform_info
from winspect.node.windows.private_dir import default_state_dir
from winspect.node.windows.runner import DEFAULT_TIMEOUT, ToolRunner
from winspect.node.windows.tools import ResolvedTool, resolve_tools
from winspect.node.windows.vfp import VfpCounters, Vfpctrl
from winspect.v1 import winspect_pb2 as pb

# Under the private state directory: one directory per capture with packet bytes, for pktmon's logs.
LOG_DIR = "pktmon-logs"

# Which tools each operation needs.
_NEEDS: dict[Operation, tuple[str, ...]] = {
    Operation.CAPTURE: ("pktmon",),
    Operation.COUNTERS: ("pktmon",),
    Operation.VFP_COUNTERS: ("hnsdiag", "vfpctrl"),
    Operation.HNS: ("hnsdiag",),
}


class WindowsBackend:
    """NodeBackend for Windows nodes (see winspect.server.backend.NodeBackend)."""

    def __init__(
        self,
        tools_dir: str | os.PathLike[str] | None = None,
        tool_timeout: float = DEFAULT_TIMEOUT,
        env: Mapping[str, str] | None = None,
        state_dir: str | os.PathLike[str] | None = None,
        max_log_bytes: int = DEFAULT_MAX_LOG_BYTES,
    ) -> None:
        self.max_log_bytes = max_log_bytes
        self.tools: dict[str, ResolvedTool] = resolve_tools(tools_dir, env)
        self.runner = ToolRunner(self.tools, tool_timeout)
        self._pktmon = Pktmon(self.runner)
        self._records = RecordStore(Path(state_dir) if state_dir else default_state_dir())
        self._capabilities: PktmonCapabilities | None = None
        self._probe_lock = threading.Lock()
        self._hns = Hnsdiag(self.runner)
        self._vfp = VfpCounters(self._hns, Vfpctrl(self.runner))

    # ---------------------------------------------------------------- node

    def platform(self) -> PlatformInfo:
        return platform_info()

    def operations(self) -> list[OperationAvailability]:
        result = []
        for operation, needs in _NEEDS.items():
            missing = [self.tools[name].reason for name in needs if not self.tools[name].available]
            if not missing and operation is Operation.CAPTURE:
                lacks = self.pktmon_capabilities().lacks(_CAPTURE_NEEDS, "a capture", "")
                missing = [lacks] if lacks else []
            result.append(OperationAvailability(operation, not missing, "; ".join(missing)))
        return result

    def pktmon_capabilities(self) -> PktmonCapabilities:
        """What the node's pktmon offers, probed once (at the server's start)."""
        with self._probe_lock:
            if self._capabilities is None:
                tool = self.tools["pktmon"]
                if tool.path is None:
                    return PktmonCapabilities(probe_error=tool.reason)
                try:
                    self._capabilities = probe(
                        lambda argv: self.runner.run("pktmon", argv).stdout, file_version(str(tool.path))
                    )
                except ToolUnavailable as exc:
                    return PktmonCapabilities(probe_error=str(exc))
            return self._capabilities

    def tool_info(self) -> pb.PktmonInfo:
        """The node's pktmon (version, command line, features) and the filters winspect owes back."""
        caps = self.pktmon_capabilities()
        return pb.PktmonInfo(
            file_version=caps.file_version,
            command_line=caps.command_line,
            features=list(caps.features),
            missing=[f"{name}: {WHY_MISSING[name]}" for name in caps.missing()] if caps.command_line else [],
            unrestored_filters=self._unrestored_filters(),
            probe_error=caps.probe_error,
        )

    def require(self, operation: Operation) -> None:
        """Raises ToolUnavailable when a tool `operation` needs is missing."""
        for name in _NEEDS[operation]:
            self.runner.require(name)

    # ---------------------------------------------------------------- capture

    def _owner(self, node_name: str) -> PktmonOwner:
        return PktmonOwner(self._pktmon, self._records, node_name)

    def capture(self, spec: CaptureSpec, node_name: str) -> PktmonCapture:
        """A pktmon capture of `spec` (nothing runs yet); UnsupportedRequest when it needs more
        filters than pktmon allows."""
        caps = self.pktmon_capabilities()
        if caps.command_line:  # unknown: try, and let pktmon's own error speak
            needs = [*_CAPTURE_NEEDS[:-1], *(("multi-file", "etl2txt") if spec.frames else ("real-time",))]
            what = "a capture with packet bytes (-w)" if spec.frames else "a capture"
            lacks = caps.lacks(needs, what, node_name)
            if lacks:
                raise ToolUnavailable("pktmon", lacks)
        session_id = uuid.uuid4().hex[:16]
        return PktmonCapture(
            self.runner,
            self._pktmon,
            self._hns,
            spec,
            node_name,
            self._owner(node_name),
            session_id,
            log_root=self._records.directory / LOG_DIR,
            max_log_bytes=self.max_log_bytes,
        )

    def clean_capture(self, node_name: str) -> str:
        """Cleans what winspect's session record proves a crashed server left (its session, its
        filters; filters it had taken over are re-added); leaves other users' session and
        filters alone. Returns what was done or left."""
        caps = self.pktmon_capabilities()
        if caps.command_line == OLD:
            return f"{caps.describe()}: winspect never captures with it, so nothing of winspect's is there"
        done = self._owner(node_name).clean_leftovers()
        return "; ".join(part for part in (done, self._remove_stale_logs()) if part)

    def _remove_stale_logs(self) -> str:
        """Log directories a crashed server left (packet contents): removed."""
        root = self._records.directory / LOG_DIR
        try:
            stale = [path for path in root.iterdir() if path.is_dir()]
        except OSError:
            return ""
        for path in stale:
            shutil.rmtree(path, ignore_errors=True)
        if not stale:
            return ""
        return f"removed {len(stale)} pktmon log director{'y' if len(stale) == 1 else 'ies'} left behind"

    def foreign_capture(self) -> str:
        """What pktmon runs that this server did not start ("" when nothing runs)."""
        caps = self.pktmon_capabilities()
        if caps.command_line == OLD:  # no `pktmon status`: counters that count tell
            counted = self._pktmon.counters_old(include_hidden=False)
            if any(row.packets for row in counted.rows):
                return f"a pktmon session winspect did not start ({caps.describe()} has no status verb)"
            return ""
        status = self._pktmon.status()
        if not status.running:
            return ""
        record = self._records.read()
        if record is not None:
            return f"a session of an earlier winspect server (session {record.session_id}), {status.kind}"
        return f"a pktmon session winspect did not start ({status.kind or 'kind unknown'})"

    def _unrestored_filters(self) -> list[str]:
        """Filters winspect took over and could not re-add (until it does, or they are back)."""
        record = self._records.read()
        return list(record.unrestored) if record is not None else []

    def counters(self, include_hidden: bool) -> CountersResult:
        if self.pktmon_capabilities().command_line == OLD:
            return self._pktmon.counters_old(include_hidden)
        return self._pktmon.counters(include_hidden)

    def components(self) -> list[pb.CaptureComponent]:
        return prepare_capture(self.runner, self._hns, self._pktmon, (), describe=True).components

    # ---------------------------------------------------------------- VFP, HNS

    def vfp_counters(self, pod: PodTarget, detailed: bool) -> list[pb.VfpPortCounters]:
        self.require(Operation.VFP_COUNTERS)
        return self._vfp.collect(pod, detailed)

    def hns(self, kind: HnsKind, summary: bool = True) -> pb.HnsSection:
        """`hnsdiag list <kind> -d` parsed into objects, plus `hnsdiag list <kind>` as text
        when `summary`."""
        documents, skipped = self._hns.objects(kind)
        text = self._hns.summary(kind) if summary else ""
        if skipped:  # keep what was not JSON where the user can see it
            text = text + ("\n" if text and not text.endswith("\n") else "") + "\n".join(skipped)
        return pb.HnsSection(
            type=_HNS_TYPES[kind],
            objects=[pb.HnsObject(id=doc.id, json=doc.text) for doc in documents],
            summary_text=text,
        )


# What every capture needs of pktmon (the last: real-time, or multi-file and etl2txt with frames).
_CAPTURE_NEEDS = ["capture", "type-drop", "real-time"]

_HNS_TYPES = {
    HnsKind.ENDPOINTS: pb.HNS_OBJECT_TYPE_ENDPOINTS,
    HnsKind.LOADBALANCERS: pb.HNS_OBJECT_TYPE_LOADBALANCERS,
    HnsKind.NAMESPACES: pb.HNS_OBJECT_TYPE_NAMESPACES,
    HnsKind.NETWORKS: pb.HNS_OBJECT_TYPE_NETWORKS,
}
