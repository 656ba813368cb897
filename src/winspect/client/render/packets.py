"""Packets to JSON lines, built straight from protobuf fields (fast path); text lines are
client.render.packet_text's.

MessageToDict is deliberately not used: a capture may stream 100,000
packets a second and every microsecond per packet counts.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from json.encoder import encode_basestring as _q  # type: ignore[attr-defined]  # C: quotes and escapes
from typing import Any

from winspect.client.names import Names
from winspect.client.render.safe import json_printable
from winspect.v1 import winspect_pb2 as pb

DIRECTIONS: dict[int, str | None] = {
    pb.DIRECTION_UNSPECIFIED: None,
    pb.DIRECTION_RX: "rx",
    pb.DIRECTION_TX: "tx",
}
PACKET_TYPES: dict[int, str | None] = {
    pb.PACKET_TYPE_UNSPECIFIED: None,
    pb.PACKET_TYPE_ALL: "all",
    pb.PACKET_TYPE_FLOW: "flow",
    pb.PACKET_TYPE_DROP: "drop",
}
_NO_NAMES = Names()

_encode_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def encode_json(value: Any) -> str:
    """One compact JSON line, safe to print (see `json_printable`)."""
    return json_printable(_encode_json(value))


class TimeFormatter:
    """Timestamp formatting with the per-second part cached (packets arrive in time order)."""

    def __init__(self) -> None:
        self._utc_sec = -1
        self._utc_prefix = ""

    def rfc3339(self, seconds: int, nanos: int) -> str | None:
        """2024-05-01T12:00:01.123456789Z, or None for an unset timestamp."""
        if seconds == 0 and nanos == 0:
            return None
        if seconds != self._utc_sec:
            self._utc_sec = seconds
            self._utc_prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        return f"{self._utc_prefix}.{nanos:09d}Z"


def packet_to_dict(p: pb.Packet, node: str, times: TimeFormatter, names: Names = _NO_NAMES) -> dict[str, Any]:
    """One packet as the JSON object documented in docs/output-schema.md."""
    ts = p.timestamp
    has = p.HasField
    pods, services = names.pod_by_ip, names.service_by_ip
    return {
        "node": node,
        "timestamp": times.rfc3339(ts.seconds, ts.nanos),
        "direction": DIRECTIONS.get(p.direction),
        "component": p.component_name or str(p.component_id),
        "component_id": p.component_id,
        "pod": names.component(node, p).pod,
        "type": PACKET_TYPES.get(p.type),
        "drop_reason": p.drop_reason or None,
        "drop_location": p.drop_location or None,
        "src_mac": p.src_mac or None,
        "dst_mac": p.dst_mac or None,
        "ethertype": p.ethertype if has("ethertype") else None,
        "src_ip": p.src_ip or None,
        "dst_ip": p.dst_ip or None,
        "src_pod": pods.get(p.src_ip),
        "dst_pod": pods.get(p.dst_ip),
        "src_service": services.get(p.src_ip),
        "dst_service": services.get(p.dst_ip),
        "protocol": p.protocol or None,
        "ip_protocol": p.ip_protocol if has("ip_protocol") else None,
        "src_port": p.src_port if has("src_port") else None,
        "dst_port": p.dst_port if has("dst_port") else None,
        "tcp_flags": p.tcp_flags or None,
        "length": p.length if has("length") else None,
        "group_id": p.group_id,
        "packet_number": p.packet_number,
        "appearance": p.appearance,
        "edge": p.edge if has("edge") else None,
        "filter_id": p.filter_id if has("filter_id") else None,
        "frame_type": p.frame_type or None,
        "original_size": p.original_size,
        "logged_size": p.logged_size,
        "summary": p.summary or None,
        "raw": p.raw or None,
        "outer": outer_to_dict(p.outer) if has("outer") else None,
    }


def outer_to_dict(outer: Any) -> dict[str, Any]:
    """The tunnel layer of an encapsulated packet (VXLAN), as in docs/output-schema.md."""
    has = outer.HasField
    return {
        "kind": outer.kind or None,
        "vni": outer.vni if has("vni") else None,
        "src_mac": outer.src_mac or None,
        "dst_mac": outer.dst_mac or None,
        "src_ip": outer.src_ip or None,
        "dst_ip": outer.dst_ip or None,
        "src_port": outer.src_port if has("src_port") else None,
        "dst_port": outer.dst_port if has("dst_port") else None,
        "summary": outer.summary or None,
    }


# The JSON text of each value of DIRECTIONS and PACKET_TYPES.
_JSON_DIRECTIONS = {k: "null" if v is None else f'"{v}"' for k, v in DIRECTIONS.items()}
_JSON_TYPES = {k: "null" if v is None else f'"{v}"' for k, v in PACKET_TYPES.items()}


def _quoted(names: dict[str, str]) -> dict[str, str]:
    """Each name as JSON text (the hot path then looks it up instead of quoting it each time)."""
    return {ip: _q(name) for ip, name in names.items()}


def packet_json_line(p: pb.Packet, node: str, node_json: str, times: TimeFormatter, names: Names) -> str:
    """packet_to_dict(p) as compact JSON, written out directly: twice as fast as building the
    dict and encoding it. tests/client check that both agree field for field."""
    has = p.HasField
    ts = p.timestamp
    stamp = times.rfc3339(ts.seconds, ts.nanos)
    pods, services = names.json_cache("pods", _quoted), names.json_cache("services", _quoted)
    pod = names.component(node, p).pod
    return (
        f'{{"node":{node_json},"timestamp":{_q(stamp) if stamp else "null"},'
        f'"direction":{_JSON_DIRECTIONS.get(p.direction, "null")},'
        f'"component":{_q(p.component_name or str(p.component_id))},"component_id":{p.component_id},'
        f'"pod":{"null" if pod is None else _q(pod)},'
        f'"type":{_JSON_TYPES.get(p.type, "null")},'
        f'"drop_reason":{_q(p.drop_reason) if p.drop_reason else "null"},'
        f'"drop_location":{_q(p.drop_location) if p.drop_location else "null"},'
        f'"src_mac":{_q(p.src_mac) if p.src_mac else "null"},'
        f'"dst_mac":{_q(p.dst_mac) if p.dst_mac else "null"},'
        f'"ethertype":{p.ethertype if has("ethertype") else "null"},'
        f'"src_ip":{_q(p.src_ip) if p.src_ip else "null"},'
        f'"dst_ip":{_q(p.dst_ip) if p.dst_ip else "null"},'
        f'"src_pod":{pods.get(p.src_ip, "null")},"dst_pod":{pods.get(p.dst_ip, "null")},'
        f'"src_service":{services.get(p.src_ip, "null")},"dst_service":{services.get(p.dst_ip, "null")},'
        f'"protocol":{_q(p.protocol) if p.protocol else "null"},'
        f'"ip_protocol":{p.ip_protocol if has("ip_protocol") else "null"},'
        f'"src_port":{p.src_port if has("src_port") else "null"},'
        f'"dst_port":{p.dst_port if has("dst_port") else "null"},'
        f'"tcp_flags":{_q(p.tcp_flags) if p.tcp_flags else "null"},'
        f'"length":{p.length if has("length") else "null"},'
        f'"group_id":{p.group_id},"packet_number":{p.packet_number},"appearance":{p.appearance},'
        f'"edge":{p.edge if has("edge") else "null"},'
        f'"filter_id":{p.filter_id if has("filter_id") else "null"},'
        f'"frame_type":{_q(p.frame_type) if p.frame_type else "null"},'
        f'"original_size":{p.original_size},"logged_size":{p.logged_size},'
        f'"summary":{_q(p.summary) if p.summary else "null"},'
        f'"raw":{_q(p.raw) if p.raw else "null"},'
        f'"outer":{_outer_json(p) if has("outer") else "null"}}}'
    )


def _outer_json(p: pb.Packet) -> str:
    return json.dumps(outer_to_dict(p.outer), separators=(",", ":"), ensure_ascii=False)


def packets_to_json_lines(
    packets: Sequence[pb.Packet], node: str, times: TimeFormatter, names: Names = _NO_NAMES
) -> str:
    """JSON lines (with the final newline) for a batch of packets."""
    if not packets:
        return ""
    node_json = _q(node)
    return json_printable(
        "\n".join([packet_json_line(p, node, node_json, times, names) for p in packets]) + "\n"
    )
