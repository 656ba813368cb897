"""HNS objects as readable tables (endpoints, load balancers, networks, namespaces) or raw JSON.

hnsdiag prints v1 objects for some types and v2 for others depending on the
Windows build, so every field is looked up under its v1 and v2 names and a
missing field prints as '-'.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from winspect.client.names import Names
from winspect.client.render.documents import enum_name, hns_objects
from winspect.client.render.table import format_table
from winspect.v1 import winspect_pb2 as pb

ENDPOINT_STATES = {
    1: "Created",
    2: "Attached",
    3: "AttachedSharing",
    4: "Detached",
    5: "Degraded",
    6: "Destroyed",
}
IP_PROTOCOLS = {6: "TCP", 17: "UDP", 1: "ICMP", 58: "ICMPv6"}
SECTION_TITLES = {
    "endpoints": "Endpoints",
    "loadbalancers": "Load balancers",
    "namespaces": "Namespaces",
    "networks": "Networks",
}


class _Lowered:
    """An HNS object with its keys lowered once, for _get: a 100-node `hns all` makes about
    300,000 lookups, and lowering every key of the object on each was most of its cost."""

    __slots__ = ("lowered",)

    def __init__(self, obj: dict[str, Any]) -> None:
        self.lowered = {k.lower(): v for k, v in obj.items()}


# The keys _get is asked for, lowered once (the callers name hnsdiag's fields as it spells them).
_LOWER: dict[str, str] = {}


_NOTHING: dict[str, Any] = {}


def _fields(obj: Any) -> dict[str, Any]:
    """The lowered-key dict of an HNS object (for the hot loops, which look keys up lowered)."""
    return obj.lowered if type(obj) is _Lowered else _NOTHING


def _present(value: Any) -> Any:
    """`value`, or None when it is empty (as _get treats it)."""
    return None if value is None or value == "" or value == [] else value


def _get(obj: Any, *keys: str) -> Any:
    """The first present key, case-insensitively (hnsdiag's casing varies)."""
    if type(obj) is _Lowered:
        lowered = obj.lowered
    elif isinstance(obj, dict):
        lowered = {k.lower(): v for k, v in obj.items()}
    else:
        return None
    for key in keys:
        value = lowered.get(_LOWER.get(key) or _LOWER.setdefault(key, key.lower()))
        if value is not None and value != "" and value != []:
            return value
    return None


def _short(guid: Any) -> str:
    """GUIDs to their first 8 characters, 64-hex container IDs to 12 (as docker/crictl show them)."""
    text = str(guid or "")
    if len(text) == 36:
        return text[:8]
    if len(text) == 64:
        return text[:12]
    return text


def _join(values: Any) -> str | None:
    if not values:
        return None
    if isinstance(values, list):
        return ",".join(str(v) for v in values if v not in (None, ""))
    return str(values)


_UNSET = object()


class HnsIndex:
    """Names of networks, and IPs (or pods) of endpoints by ID, to show instead of GUIDs."""

    def __init__(self, sections: dict[str, list[Any]], names: Names | None = None) -> None:
        self.names = names if names is not None else Names()
        self.networks = {
            str(_get(n, "ID")).lower(): _get(n, "Name") for n in sections.get("networks", []) if _get(n, "ID")
        }
        self.endpoints: dict[str, str | None] = {}
        # Each endpoint's IPs by object identity, for its own row (the objects live as long as the index).
        self._ips: dict[int, str | None] = {}
        for e in sections.get("endpoints", []):
            ips = self._ips[id(e)] = endpoint_ips(e)
            ident = _present(_fields(e).get("id"))
            if ident:
                self.endpoints[str(ident).lower()] = ips

    def ips_of(self, e: Any) -> str | None:
        """endpoint_ips(e), computed once per endpoint object."""
        ips = self._ips.get(id(e), _UNSET)
        return endpoint_ips(e) if ips is _UNSET else ips  # type: ignore[return-value]

    def network(self, ref: Any) -> str | None:
        if not ref:
            return None
        return self.networks.get(str(ref).lower()) or _short(ref)

    def endpoint(self, ref: Any) -> str:
        """An endpoint referred to (a backend): its pod, else its IPs, else its short ID."""
        ident = str(ref).rsplit("/", 1)[-1]
        ips = self.endpoints.get(ident.lower())
        return (self.pods(ips) or ips) if ips else _short(ident)

    def pods(self, ips: str | None) -> str | None:
        """The pods (namespace/name) of comma-separated IPs, or None when none is known."""
        if not ips:
            return None
        found = [p for p in (self.names.pod_by_ip.get(ip) for ip in ips.split(",")) if p]
        return ",".join(dict.fromkeys(found)) or None


def endpoint_ips(e: Any) -> str | None:
    ips: list[str] = []
    fields = _fields(e)
    for key in ("ipaddress", "ipv6address"):
        value = fields.get(key)
        if value:
            ips.append(str(value))
    for conf in _present(fields.get("ipconfigurations")) or []:
        value = _get(conf, "IpAddress")
        if value and str(value) not in ips:
            ips.append(str(value))
    return ",".join(ips) or None


def endpoints_table(objects: list[Any], index: HnsIndex, wide: bool) -> str:
    headers = ["NAME", "IP", "POD", "MAC", "NETWORK", "STATE", "LOCATION"]
    if wide:
        headers += ["ID", "GATEWAY", "PORT GUID"]
    rows = []
    for e in objects:
        # The fields by their lowered names: hundreds of rows per node, thousands per cluster.
        f = _fields(e)
        state = _present(f.get("state"))
        flags = _present(f.get("flags"))
        is_remote = bool(_present(f.get("isremoteendpoint"))) or (isinstance(flags, int) and bool(flags & 1))
        network = _present(f.get("virtualnetworkname")) or index.network(
            _present(f.get("virtualnetwork")) or _present(f.get("hostcomputenetwork"))
        )
        ips = index.ips_of(e)
        row = [
            _present(f.get("name")),
            ips,
            index.pods(ips),
            _present(f.get("macaddress")),
            network,
            ENDPOINT_STATES.get(state, str(state)) if isinstance(state, int) else state,
            "remote" if is_remote else "local",
        ]
        if wide:
            port = None
            for alloc in _get(_get(e, "Resources"), "Allocators") or []:
                if _get(alloc, "Tag") == "Endpoint Port":
                    port = _get(alloc, "EndpointPortGuid")
            row += [_get(e, "ID"), _get(e, "GatewayAddress"), port]
        rows.append(row)
    return format_table(headers, rows)


def _port_mappings(lb: Any) -> str | None:
    mappings = _get(lb, "PortMappings")
    if not mappings:  # v1: one mapping at the top level
        if _get(lb, "ExternalPort") or _get(lb, "InternalPort"):
            mappings = [lb]
        else:
            return None
    parts = []
    for m in mappings:
        proto = _get(m, "Protocol")
        name = IP_PROTOCOLS.get(proto, str(proto)) if isinstance(proto, int) else (proto or "?")
        parts.append(f"{name} {_get(m, 'ExternalPort') or 0}->{_get(m, 'InternalPort') or 0}")
    return ",".join(parts)


def loadbalancers_table(objects: list[Any], index: HnsIndex, wide: bool) -> str:
    headers = ["VIPS", "PORTS", "BACKENDS", "SOURCE VIP", "FLAGS"]
    if wide:
        headers.append("ID")
    rows = []
    for lb in objects:
        backends = _get(lb, "HostComputeEndpoints", "References") or []
        flags = _get(lb, "Flags")
        flag_names = []
        if isinstance(flags, int):
            if flags & 1:
                flag_names.append("DSR")
            if flags & 2:
                flag_names.append("IPv6")
        elif _get(lb, "IsDSR"):
            flag_names.append("DSR")
        row = [
            _join(_get(lb, "FrontendVIPs", "VIPs")),
            _port_mappings(lb),
            ",".join(index.endpoint(b) for b in backends) or None,
            _get(lb, "SourceVIP"),
            ",".join(flag_names) or None,
        ]
        if wide:
            row.append(_get(lb, "ID"))
        rows.append(row)
    return format_table(headers, rows)


def _subnets(n: Any) -> tuple[str | None, str | None]:
    prefixes, gateways = [], []
    for s in _get(n, "Subnets") or []:
        if _get(s, "AddressPrefix"):
            prefixes.append(str(_get(s, "AddressPrefix")))
        if _get(s, "GatewayAddress"):
            gateways.append(str(_get(s, "GatewayAddress")))
    for ipam in _get(n, "Ipams") or []:  # v2
        for s in _get(ipam, "Subnets") or []:
            if _get(s, "IpAddressPrefix"):
                prefixes.append(str(_get(s, "IpAddressPrefix")))
            for route in _get(s, "Routes") or []:
                if _get(route, "NextHop"):
                    gateways.append(str(_get(route, "NextHop")))
    return ",".join(prefixes) or None, ",".join(gateways) or None


def networks_table(objects: list[Any], index: HnsIndex, wide: bool) -> str:
    headers = ["NAME", "TYPE", "SUBNETS", "GATEWAY", "MANAGEMENT IP"]
    if wide:
        headers += ["ADAPTER", "DR MAC", "ID"]
    rows = []
    for n in objects:
        subnets, gateways = _subnets(n)
        row = [_get(n, "Name"), _get(n, "Type"), subnets, gateways, _get(n, "ManagementIP", "ManagementIPv6")]
        if wide:
            row += [_get(n, "NetworkAdapterName"), _get(n, "DrMacAddress"), _get(n, "ID")]
        rows.append(row)
    return format_table(headers, rows)


def namespaces_table(objects: list[Any], index: HnsIndex, wide: bool) -> str:
    """IDs shortened unless wide; endpoints by IP in both (wide adds their IDs)."""
    headers = ["ID", "TYPE", "CONTAINERS", "ENDPOINTS"] + (["ENDPOINT IDS"] if wide else [])
    rows = []
    for ns in objects:
        containers, endpoints, endpoint_ids = [], [], []
        for res in _get(ns, "Resources", "ResourceList") or []:
            data = _get(res, "Data") or {}
            ident = _get(data, "Id", "ID") or _get(res, "Id", "ID")
            kind = str(_get(res, "Type") or "").lower()
            if kind == "container":
                containers.append(_short(ident) if not wide else str(ident))
            elif kind == "endpoint":
                endpoints.append(index.endpoint(ident))
                endpoint_ids.append(str(ident))
        ident = _get(ns, "ID") or _get(ns, "NamespaceId")
        row = [
            ident if wide else _short(ident),
            _get(ns, "Type") or ("Default" if _get(ns, "IsDefault") else None),
            ",".join(containers) or None,
            ",".join(endpoints) or None,
        ]
        rows.append(row + ([",".join(endpoint_ids) or None] if wide else []))
    return format_table(headers, rows)


TABLES = {
    "networks": networks_table,
    "endpoints": endpoints_table,
    "loadbalancers": loadbalancers_table,
    "namespaces": namespaces_table,
}


# The kinds whose objects the tables of a kind refer to (by ID): asked for with it, so that a
# column shows the same (an endpoint's network by name, a backend by IP) whatever was asked.
HNS_LOOKUPS = {
    "endpoints": ["networks"],
    "loadbalancers": ["endpoints"],
    "namespaces": ["endpoints"],
}


def _sections(resp: pb.HnsResponse) -> dict[str, list[Any]]:
    sections: dict[str, list[Any]] = {}
    for section in resp.sections:
        kind = enum_name(pb.HnsObjectType, section.type, "HNS_OBJECT_TYPE_") or "unspecified"
        parsed = hns_objects(section.objects)
        sections.setdefault(kind, []).extend(_Lowered(o) if isinstance(o, dict) else o for o in parsed)
    return sections


def hns_text(
    resp: pb.HnsResponse,
    *,
    wide: bool = False,
    lookups: Sequence[pb.HnsResponse] = (),
    names: Names | None = None,
) -> str:
    """Every section of an HnsResponse as a titled table; `lookups` only name what they refer to;
    endpoints and backends named after their pods where `names` knows them."""
    sections = _sections(resp)
    order = list(sections)
    known = dict(sections)
    for extra in lookups:
        for kind, objects in _sections(extra).items():
            known.setdefault(kind, objects)
    index = HnsIndex(known, names)
    blocks = []
    for kind in order:
        objects = sections[kind]
        title = f"{SECTION_TITLES.get(kind, kind)} ({len(objects)})"
        table = TABLES[kind](objects, index, wide) if kind in TABLES and objects else "(none)"
        blocks.append(f"{title}\n{table}")
    return "\n\n".join(blocks)
