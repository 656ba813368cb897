"""The Windows node backend: pktmon, vfpctrl and hnsdiag behind the NodeBackend interface.

It owns tool resolution (`--tools-dir`, env `WINSPECT_TOOLS_DIR`, PATH)
and the tool runner; the server core owns validation and the capture
session, and calls the primitives here in order.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from winspect.node.errors import NodeError, TargetNotFound, ToolOutputError, ToolUnavailable
from winspect.node.types import (
    CaptureStart,
    CountersResult,
    HnsKind,
    Operation,
    OperationAvailability,
    PktmonFilter,
    PlatformInfo,
    PodTarget,
)
from winspect.node.windows.file_capture import FILE_STEM, FileCapture
from winspect.node.windows.hns import Hnsdiag, endpoint_ips, endpoint_mac, is_remote
from winspect.node.windows.parsers.hnsdiag import HnsDocument
from winspect.node.windows.parsers.pktmon_list import Component, components_by_mac
from winspect.node.windows.pktmon import Pktmon
from winspect.node.windows.platform_info import platform_info
from winspect.node.windows.runner import DEFAULT_TIMEOUT, StreamingProcess, ToolRunner
from winspect.node.windows.tools import ResolvedTool, resolve_tools
from winspect.node.windows.vfp import VfpCounters, Vfpctrl
from winspect.v1 import winspect_pb2 as pb

log = logging.getLogger("winspect.node.backend")

# Which tools each operation needs.
_NEEDS: dict[Operation, tuple[str, ...]] = {
    Operation.CAPTURE: ("pktmon",),
    Operation.COUNTERS: ("pktmon",),
    Operation.VFP_COUNTERS: ("hnsdiag", "vfpctrl"),
    Operation.HNS: ("hnsdiag",),
}


@dataclass
class CapturePrep:
    """What a capture needs from the node before it starts."""

    component_ids: list[int] = field(default_factory=list)  # the pods' vNICs
    component_names: dict[int, str] = field(default_factory=dict)  # every component pktmon listed
    # With describe: every component, and for container vNICs their HNS endpoint (CaptureInfo).
    components: list[pb.CaptureComponent] = field(default_factory=list)


class WindowsBackend:
    """NodeBackend for Windows nodes (see winspect.server.backend.NodeBackend)."""

    def __init__(
        self,
        tools_dir: str | os.PathLike[str] | None = None,
        tool_timeout: float = DEFAULT_TIMEOUT,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.tools: dict[str, ResolvedTool] = resolve_tools(tools_dir, env)
        self.runner = ToolRunner(self.tools, tool_timeout)
        self._pktmon = Pktmon(self.runner)
        self._hns = Hnsdiag(self.runner)
        self._vfp = VfpCounters(self._hns, Vfpctrl(self.runner))
        self._file_capture: FileCapture | None = None
        # This capture's filters match the inner packet (-e): None until its first filter.
        self._inner_filters: bool | None = None

    # ---------------------------------------------------------------- node

    def platform(self) -> PlatformInfo:
        return platform_info()

    def operations(self) -> list[OperationAvailability]:
        result = []
        for operation, needs in _NEEDS.items():
            missing = [self.tools[name].reason for name in needs if not self.tools[name].available]
            result.append(OperationAvailability(operation, not missing, "; ".join(missing)))
        return result

    def require(self, operation: Operation) -> None:
        """Raises ToolUnavailable when a tool `operation` needs is missing."""
        for name in _NEEDS[operation]:
            self.runner.require(name)

    # ---------------------------------------------------------------- capture

    def capture_prepare(self, pods: Sequence[PodTarget], describe: bool = False) -> CapturePrep:
        """Component names (`pktmon list`) and the pods' component ids (via HNS endpoints).

        Runs `hnsdiag list endpoints -d` (with pods, or with `describe`), then `pktmon list
        --include-hidden`. `describe` (pcapng export) also lists every component with the
        HNS endpoint behind it; without hnsdiag the components come without endpoints.
        """
        self._inner_filters = None  # a new capture: its network is asked again
        macs: list[tuple[PodTarget, str]] = []
        endpoints: list[HnsDocument] = []
        if pods:
            try:
                self.runner.require("hnsdiag")
            except ToolUnavailable as exc:
                raise ToolUnavailable("hnsdiag", f"capturing on pods needs hnsdiag: {exc.reason}") from None
            endpoints, _ = self._hns.objects(HnsKind.ENDPOINTS)
            for pod in pods:
                endpoint = self._hns.local_endpoint(pod, endpoints)
                mac = endpoint_mac(endpoint.value)
                if not mac:
                    raise ToolOutputError(f"HNS endpoint {endpoint.id} of {pod.label()} has no MAC address")
                macs.append((pod, mac))
        elif describe:
            try:
                endpoints, _ = self._hns.objects(HnsKind.ENDPOINTS)
            except NodeError as exc:  # names without endpoints are still worth having
                log.info(
                    "no HNS endpoints for the capture's components", extra={"fields": {"error": str(exc)}}
                )
        # hidden components too: names for every component a packet crosses
        components = self._pktmon.components(include_hidden=True)
        prep = CapturePrep(component_names={c.id: c.name for c in components})
        if describe:
            prep.components = describe_components(components, endpoints, pods)
        index = components_by_mac(components)
        for pod, mac in macs:
            found = index.get(mac)
            if not found:
                raise TargetNotFound(
                    f"{pod.label()}: its HNS endpoint MAC {mac} is not among the components of `pktmon list`"
                )
            for component in found:
                if component.id not in prep.component_ids:
                    prep.component_ids.append(component.id)
        return prep

    def capture_stop(self) -> bool:
        """`pktmon stop`; False when pktmon refused (no session was running).

        A file-mode capture then converts its last log files and ends its output.
        """
        stopped = self._pktmon.stop()
        if self._file_capture is not None:
            self._file_capture.stopped()
        return stopped

    def capture_remove_filters(self) -> None:
        """`pktmon filter remove`."""
        self._pktmon.remove_filters()

    def capture_add_filter(self, name: str, spec: PktmonFilter) -> None:
        """`pktmon filter add <name> <spec args>`, with `-e` when the node's HNS network is
        an overlay (asked once per capture, before its first filter)."""
        if self._inner_filters is None:
            self._inner_filters = self._hns.has_overlay_network()
        self._pktmon.add_filter(name, spec, inner=self._inner_filters)

    def capture_start(self, start: CaptureStart) -> StreamingProcess | FileCapture:
        """`pktmon start --capture --log-mode real-time ...`, output streaming; with
        `start.frames`, multi-file logging into a private directory, converted file by
        file (winspect.node.windows.file_capture)."""
        if not start.frames:
            return self._pktmon.start(start)
        directory = Path(tempfile.mkdtemp(prefix="winspect-pktmon-"))
        spec = replace(start, file_name=str(directory / f"{FILE_STEM}.etl"))
        try:
            self._pktmon.start_logging(spec)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        self._file_capture = FileCapture(self.runner, directory, ["pktmon", *spec.args()])
        return self._file_capture

    def counters(self, include_hidden: bool) -> CountersResult:
        return self._pktmon.counters(include_hidden)

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


def describe_components(
    components: list[Component], endpoints: list[HnsDocument], pods: Sequence[PodTarget]
) -> list[pb.CaptureComponent]:
    """Every pktmon component once, with the local HNS endpoint whose MAC it has (if any)
    and the requested pod holding one of that endpoint's IPs (if any)."""
    by_mac: dict[str, HnsDocument] = {}
    for doc in endpoints:
        mac = endpoint_mac(doc.value)
        if mac and not is_remote(doc.value):
            by_mac.setdefault(mac, doc)
    described: dict[int, pb.CaptureComponent] = {}
    for component in components:
        if component.id in described:
            continue
        entry = pb.CaptureComponent(id=component.id, name=component.name, mac=component.mac)
        endpoint = by_mac.get(component.mac) if component.mac else None
        if endpoint is not None:
            ips = [ip.split("/")[0] for ip in endpoint_ips(endpoint.value)]
            entry.endpoint_id = endpoint.id
            entry.ips.extend(ips)
            for pod in pods:
                if pod.ip in ips:
                    entry.pod.CopyFrom(pb.PodRef(namespace=pod.namespace, name=pod.name, ip=pod.ip))
                    break
        described[component.id] = entry
    return list(described.values())


_HNS_TYPES = {
    HnsKind.ENDPOINTS: pb.HNS_OBJECT_TYPE_ENDPOINTS,
    HnsKind.LOADBALANCERS: pb.HNS_OBJECT_TYPE_LOADBALANCERS,
    HnsKind.NAMESPACES: pb.HNS_OBJECT_TYPE_NAMESPACES,
    HnsKind.NETWORKS: pb.HNS_OBJECT_TYPE_NETWORKS,
}
