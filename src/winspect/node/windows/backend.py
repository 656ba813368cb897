"""The Windows node backend: pktmon, vfpctrl and hnsdiag behind the NodeBackend interface.

It owns tool resolution (`--tools-dir`, env `WINSPECT_TOOLS_DIR`, PATH),
the tool runner, and how a capture runs on the node (winspect.node.windows.
capture); the server core owns validation and the capture's life.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

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
from winspect.node.windows.hns import Hnsdiag
from winspect.node.windows.pktmon import Pktmon
from winspect.node.windows.platform_info import platform_info
from winspect.node.windows.runner import DEFAULT_TIMEOUT, ToolRunner
from winspect.node.windows.tools import ResolvedTool, resolve_tools
from winspect.node.windows.vfp import VfpCounters, Vfpctrl
from winspect.v1 import winspect_pb2 as pb

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
    ) -> None:
        self.tools: dict[str, ResolvedTool] = resolve_tools(tools_dir, env)
        self.runner = ToolRunner(self.tools, tool_timeout)
        self._pktmon = Pktmon(self.runner)
        self._hns = Hnsdiag(self.runner)
        self._vfp = VfpCounters(self._hns, Vfpctrl(self.runner))

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

    def capture(self, spec: CaptureSpec, node_name: str) -> PktmonCapture:
        """A pktmon capture of `spec` (nothing runs yet); UnsupportedRequest when it needs more
        filters than pktmon allows."""
        return PktmonCapture(self.runner, self._pktmon, self._hns, spec, node_name)

    def clean_capture(self) -> bool:
        """`pktmon stop`, then `pktmon filter remove`; False when no session was running."""
        stopped = self._pktmon.stop()
        self._pktmon.remove_filters()
        return stopped

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


_HNS_TYPES = {
    HnsKind.ENDPOINTS: pb.HNS_OBJECT_TYPE_ENDPOINTS,
    HnsKind.LOADBALANCERS: pb.HNS_OBJECT_TYPE_LOADBALANCERS,
    HnsKind.NAMESPACES: pb.HNS_OBJECT_TYPE_NAMESPACES,
    HnsKind.NETWORKS: pb.HNS_OBJECT_TYPE_NETWORKS,
}
