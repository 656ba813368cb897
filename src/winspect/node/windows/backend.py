"""The Windows node backend: pktmon, vfpctrl and hnsdiag behind the NodeBackend interface.

It owns tool resolution (`--tools-dir`, env `WINSPECT_TOOLS_DIR`, PATH)
and the tool runner; the server core owns validation and the capture
session, and calls the primitives here in order.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from winspect.node.errors import TargetNotFound, ToolOutputError, ToolUnavailable
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
from winspect.node.windows.hns import Hnsdiag, endpoint_mac
from winspect.node.windows.parsers.pktmon_list import components_by_mac
from winspect.node.windows.pktmon import Pktmon
from winspect.node.windows.platform_info import platform_info
from winspect.node.windows.runner import DEFAULT_TIMEOUT, StreamingProcess, ToolRunner
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


@dataclass
class CapturePrep:
    """What a capture needs from the node before it starts."""

    component_ids: list[int] = field(default_factory=list)  # the pods' vNICs
    component_names: dict[int, str] = field(default_factory=dict)  # every component pktmon listed


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

    def capture_prepare(self, pods: Sequence[PodTarget]) -> CapturePrep:
        """Component names (`pktmon list`) and the pods' component ids (via HNS endpoints).

        Runs `hnsdiag list endpoints -d` (only with pods), then `pktmon list --include-hidden`.
        """
        macs: list[tuple[PodTarget, str]] = []
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
        # hidden components too: names for every component a packet crosses
        components = self._pktmon.components(include_hidden=True)
        prep = CapturePrep(component_names={c.id: c.name for c in components})
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
        """`pktmon stop`; False when pktmon refused (no session was running)."""
        return self._pktmon.stop()

    def capture_remove_filters(self) -> None:
        """`pktmon filter remove`."""
        self._pktmon.remove_filters()

    def capture_add_filter(self, name: str, spec: PktmonFilter) -> None:
        """`pktmon filter add <name> <spec args>`."""
        self._pktmon.add_filter(name, spec)

    def capture_start(self, start: CaptureStart) -> StreamingProcess:
        """`pktmon start --capture --log-mode real-time ...`, output streaming."""
        return self._pktmon.start(start)

    def counters(self, include_hidden: bool) -> CountersResult:
        return self._pktmon.counters(include_hidden)

    # ---------------------------------------------------------------- VFP, HNS

    def vfp_counters(self, pod: PodTarget, detailed: bool) -> list[pb.VfpPortCounters]:
        self.require(Operation.VFP_COUNTERS)
        return self._vfp.collect(pod, detailed)

    def hns(self, kind: HnsKind) -> pb.HnsSection:
        """`hnsdiag list <kind> -d` parsed into objects, plus `hnsdiag list <kind>` as text."""
        documents, skipped = self._hns.objects(kind)
        summary = self._hns.summary(kind)
        if skipped:  # keep what was not JSON where the user can see it
            summary = summary + ("\n" if summary and not summary.endswith("\n") else "") + "\n".join(skipped)
        return pb.HnsSection(
            type=_HNS_TYPES[kind],
            objects=[pb.HnsObject(id=doc.id, json=doc.text) for doc in documents],
            summary_text=summary,
        )


_HNS_TYPES = {
    HnsKind.ENDPOINTS: pb.HNS_OBJECT_TYPE_ENDPOINTS,
    HnsKind.LOADBALANCERS: pb.HNS_OBJECT_TYPE_LOADBALANCERS,
    HnsKind.NAMESPACES: pb.HNS_OBJECT_TYPE_NAMESPACES,
    HnsKind.NETWORKS: pb.HNS_OBJECT_TYPE_NETWORKS,
}
