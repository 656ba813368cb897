"""What a capture needs from the node before it starts: the pods' pktmon components.

Nothing here changes the node: `hnsdiag list endpoints -d` finds each pod's
local HNS endpoint (its MAC), `pktmon list --include-hidden` gives every
component's name and the vNICs with those MACs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from winspect.node.errors import NodeError, TargetNotFound, ToolOutputError, ToolUnavailable
from winspect.node.types import HnsKind, PodTarget
from winspect.node.windows.hns import Hnsdiag, endpoint_ips, endpoint_mac, is_remote
from winspect.node.windows.parsers.hnsdiag import HnsDocument
from winspect.node.windows.parsers.pktmon_list import Component, components_by_mac
from winspect.node.windows.pktmon import Pktmon
from winspect.node.windows.runner import ToolRunner
from winspect.v1 import winspect_pb2 as pb

log = logging.getLogger("winspect.node.backend")


@dataclass
class CapturePrep:
    """What a capture needs from the node before it starts."""

    component_ids: list[int] = field(default_factory=list)  # the pods' vNICs
    component_names: dict[int, str] = field(default_factory=dict)  # every component pktmon listed
    # With describe: every component, and for container vNICs their HNS endpoint (CaptureInfo).
    components: list[pb.CaptureComponent] = field(default_factory=list)


def prepare_capture(
    runner: ToolRunner, hns: Hnsdiag, pktmon: Pktmon, pods: Sequence[PodTarget], describe: bool = False
) -> CapturePrep:
    """Component names (`pktmon list`) and the pods' component ids (via HNS endpoints).

    Runs `hnsdiag list endpoints -d` (with pods, or with `describe`), then `pktmon list
    --include-hidden`. `describe` (pcapng export) also lists every component with the
    HNS endpoint behind it; without hnsdiag the components come without endpoints.
    """
    macs: list[tuple[PodTarget, str]] = []
    endpoints: list[HnsDocument] = []
    if pods:
        try:
            runner.require("hnsdiag")
        except ToolUnavailable as exc:
            raise ToolUnavailable("hnsdiag", f"capturing on pods needs hnsdiag: {exc.reason}") from None
        endpoints, _ = hns.objects(HnsKind.ENDPOINTS)
        for pod in pods:
            endpoint = hns.local_endpoint(pod, endpoints)
            mac = endpoint_mac(endpoint.value)
            if not mac:
                raise ToolOutputError(f"HNS endpoint {endpoint.id} of {pod.label()} has no MAC address")
            macs.append((pod, mac))
    elif describe:
        try:
            endpoints, _ = hns.objects(HnsKind.ENDPOINTS)
        except NodeError as exc:  # names without endpoints are still worth having
            log.info("no HNS endpoints for the capture's components", extra={"fields": {"error": str(exc)}})
    # hidden components too: names for every component a packet crosses
    components = pktmon.components(include_hidden=True)
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
