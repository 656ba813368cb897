"""hnsdiag adapter: HNS objects (`hnsdiag list <type> -d`) and summaries, and pod lookups.

A pod is found by IP among the node's local endpoints (remote endpoints,
other nodes' pods on overlay networks, are skipped). Both the v1 field
names that `hnsdiag -d` prints (`IPAddress`, `IPv6Address`) and the v2 form
(`IpConfigurations[].IpAddress`) are read; MACs are compared normalised.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterator
from typing import Any

from winspect.node.errors import NodeError, TargetNotFound, ToolOutputError
from winspect.node.mac import normalise_mac
from winspect.node.types import HnsKind, PodTarget
from winspect.node.windows.parsers.hnsdiag import HnsDocument, parse_hns_objects
from winspect.node.windows.runner import ToolRunner

log = logging.getLogger(__name__)

TOOL = "hnsdiag"


def get_key(obj: Any, key: str) -> Any:
    """`obj[key]`, key compared case-insensitively; None when absent."""
    if not isinstance(obj, dict):
        return None
    if key in obj:
        return obj[key]
    lowered = key.lower()
    return next((v for k, v in obj.items() if isinstance(k, str) and k.lower() == lowered), None)


def walk_allocators(obj: Any) -> Iterator[dict[str, Any]]:
    """Every `Allocators[]` entry anywhere in an HNS object (Resources, Layer.Resources, ...)."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if isinstance(key, str) and key.lower() == "allocators" and isinstance(value, list):
                yield from (item for item in value if isinstance(item, dict))
            else:
                yield from walk_allocators(value)
    elif isinstance(obj, list):
        for item in obj:
            yield from walk_allocators(item)


def allocator_value(obj: Any, tag: str, key: str) -> str:
    """`key` of the first allocator tagged `tag` (tags compared case-insensitively)."""
    for allocator in walk_allocators(obj):
        found_tag = get_key(allocator, "Tag")
        value = get_key(allocator, key)
        matches = isinstance(found_tag, str) and found_tag.lower() == tag.lower()
        if matches and isinstance(value, str) and value:
            return value
    return ""


def _same_ip(value: Any, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if not isinstance(value, str) or not value:
        return False
    try:
        return ipaddress.ip_address(value.split("/")[0]) == ip
    except ValueError:
        return False


def endpoint_ips(endpoint: dict[str, Any]) -> list[str]:
    values = (get_key(endpoint, "IPAddress"), get_key(endpoint, "IPv6Address"))
    ips = [v for v in values if isinstance(v, str)]
    for config in get_key(endpoint, "IpConfigurations") or []:
        value = get_key(config, "IpAddress")
        if isinstance(value, str):
            ips.append(value)
    return [ip for ip in ips if ip]


def is_remote(endpoint: dict[str, Any]) -> bool:
    if get_key(endpoint, "IsRemoteEndpoint") is True:
        return True
    flags = get_key(endpoint, "Flags")  # v2: Flags 1 = remote
    return isinstance(flags, int) and not isinstance(flags, bool) and bool(flags & 1)


def endpoint_mac(endpoint: dict[str, Any]) -> str:
    """The endpoint's MAC, normalised; "" when absent or malformed."""
    for value in (get_key(endpoint, "MacAddress"), allocator_value(endpoint, "Endpoint Port", "MacAddress")):
        if isinstance(value, str) and value:
            try:
                return normalise_mac(value)
            except ValueError:
                continue
    return ""


class Hnsdiag:
    def __init__(self, runner: ToolRunner) -> None:
        self._runner = runner

    def objects(self, kind: HnsKind) -> tuple[list[HnsDocument], list[str]]:
        """`hnsdiag list <kind> -d`: parsed objects and any text that was not JSON."""
        parsed = parse_hns_objects(self._runner.run(TOOL, ["list", kind.value, "-d"]).stdout)
        return parsed.documents, parsed.skipped

    def has_overlay_network(self) -> bool:
        """True when an HNS network of the node is an overlay (VXLAN: win-overlay, Flannel or
        Calico VXLAN); without hnsdiag, or when it fails, False (logged)."""
        try:
            networks, _ = self.objects(HnsKind.NETWORKS)
        except NodeError as exc:
            log.info("no HNS networks; filters match outer packets", extra={"fields": {"error": str(exc)}})
            return False
        return any(str(doc.value.get("Type", "")).lower() == "overlay" for doc in networks)

    def summary(self, kind: HnsKind) -> str:
        """`hnsdiag list <kind>`: the human summary, as text."""
        return self._runner.run(TOOL, ["list", kind.value]).stdout

    def local_endpoint(self, pod: PodTarget, endpoints: list[HnsDocument] | None = None) -> HnsDocument:
        """The local HNS endpoint holding the pod's IP; TargetNotFound when there is none."""
        ip = ipaddress.ip_address(pod.ip)
        if endpoints is None:
            endpoints, _ = self.objects(HnsKind.ENDPOINTS)
        for doc in endpoints:
            if not is_remote(doc.value) and any(_same_ip(v, ip) for v in endpoint_ips(doc.value)):
                return doc
        raise TargetNotFound(f"{pod.label()} has no HNS endpoint on this node")

    def network(self, network_id: str, network_name: str) -> HnsDocument:
        """The HNS network with this ID (or, without an ID, this name)."""
        networks, _ = self.objects(HnsKind.NETWORKS)
        for doc in networks:
            if network_id and doc.id.lower() == network_id.lower():
                return doc
        for doc in networks:
            if network_name and get_key(doc.value, "Name") == network_name:
                return doc
        raise ToolOutputError(
            f"HNS network {network_id or network_name!r} of the endpoint is not in `hnsdiag list networks -d`"
        )
