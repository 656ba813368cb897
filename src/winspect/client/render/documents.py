"""Protobuf results to plain dicts for -o json (one document per command, per-node results and errors)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper
from google.protobuf.timestamp_pb2 import Timestamp

from winspect.client.render.packets import DIRECTIONS, TimeFormatter
from winspect.client.render.safe import json_printable
from winspect.v1 import winspect_pb2 as pb

SCHEMA_VERSION = 1

_TIMES = TimeFormatter()


def enum_name(enum: EnumTypeWrapper, value: int, prefix: str) -> str | None:
    """OPERATION_CAPTURE -> "capture"; 0 (UNSPECIFIED) -> None."""
    if value == 0:
        return None
    try:
        name: str = enum.Name(value)
    except ValueError:
        return str(value)
    return name[len(prefix) :].lower() if name.startswith(prefix) else name.lower()


def timestamp(ts: Timestamp) -> str | None:
    return _TIMES.rfc3339(ts.seconds, ts.nanos)


def capture_info_to_dict(info: pb.CaptureInfo) -> dict[str, Any]:
    return {
        "session_id": info.session_id,
        "started_at": timestamp(info.started_at),
        "requester": info.requester or None,
        "pktmon_filters": list(info.pktmon_filters),
        "pktmon_start_args": list(info.pktmon_start_args),
        "counters_only": info.counters_only,
        "taken_over": info.taken_over or None,
    }


def counters_to_dict(resp: pb.CountersResponse, pods: Mapping[int, str] | None = None) -> dict[str, Any]:
    """The counters; `pods`: the pod behind a container vNIC's component id (namespace/name)."""
    pods = pods or {}
    return {
        "capture_running": resp.capture_running,
        "capture": capture_info_to_dict(resp.capture) if resp.HasField("capture") else None,
        "foreign_session": resp.foreign_session or None,
        "rows": [
            {
                "group": r.group,
                "component_id": r.component_id,
                "component_name": r.component_name,
                "pod": pods.get(r.component_id),
                "counter_type": r.counter_type,
                "direction": DIRECTIONS.get(r.direction),
                "packets": r.packets,
                "bytes": r.bytes,
            }
            for r in resp.rows
        ],
        "raw_text": resp.raw_text or None,
    }


_VFP_DIRECTIONS = {pb.DIRECTION_RX: "in", pb.DIRECTION_TX: "out"}


def vfp_to_dict(resp: pb.VfpCountersResponse, pod: Mapping[str, str] | None = None) -> dict[str, Any]:
    ports = []
    for port in resp.ports:
        counters: dict[str, dict[str, int]] = {}
        for d in port.directions:
            key = _VFP_DIRECTIONS.get(d.direction, "unspecified")
            counters.setdefault(key, {}).update({c.name: c.value for c in d.counters})
        ports.append(
            {
                "role": enum_name(pb.VfpPortRole, port.role, "VFP_PORT_ROLE_"),
                "port_guid": port.port_guid,
                "friendly_name": port.friendly_name or None,
                "counters": counters,
            }
        )
    return {"pod": dict(pod) if pod else None, "ports": ports}


def hns_object(obj: pb.HnsObject) -> Any:
    """The object's JSON parsed; when it does not parse, the text under "unparsed"."""
    try:
        return json.loads(obj.json)
    except ValueError:
        return {"ID": obj.id, "unparsed": obj.json}


def hns_objects(objects: Iterable[pb.HnsObject]) -> list[Any]:
    """hns_object of each, parsed as one JSON array when they are all valid (one parser call
    for a node's hundreds of objects instead of one each)."""
    texts = [o.json for o in objects]
    if not texts:
        return []
    try:
        parsed = json.loads("[" + ",".join(texts) + "]")
        if isinstance(parsed, list) and len(parsed) == len(texts):
            return parsed
    except ValueError:
        pass
    return [hns_object(o) for o in objects]


def hns_to_dict(resp: pb.HnsResponse) -> dict[str, Any]:
    out: dict[str, Any] = {}
    summaries: dict[str, str] = {}
    for section in resp.sections:
        kind = enum_name(pb.HnsObjectType, section.type, "HNS_OBJECT_TYPE_") or "unspecified"
        out.setdefault(kind, []).extend(hns_objects(section.objects))
        if section.summary_text:
            summaries[kind] = section.summary_text
    out["summary_text"] = summaries
    return out


def node_info_to_dict(resp: pb.NodeInfoResponse) -> dict[str, Any]:
    return {
        "hostname": resp.hostname,
        "os": resp.os,
        "os_build": resp.os_build,
        "version": resp.version,
        "operations": [
            {
                "operation": enum_name(pb.Operation, op.operation, "OPERATION_"),
                "available": op.available,
                "reason": op.reason or None,
            }
            for op in resp.operations
        ],
        "capture": capture_info_to_dict(resp.capture) if resp.HasField("capture") else None,
        "pktmon": pktmon_info_to_dict(resp.pktmon),
    }


def pktmon_info_to_dict(info: Any) -> dict[str, Any]:
    return {
        "file_version": info.file_version or None,
        "command_line": info.command_line or None,
        "features": list(info.features),
        "missing": list(info.missing),
        "unrestored_filters": list(info.unrestored_filters),
        "probe_error": info.probe_error or None,
    }


def ended_to_dict(ended: pb.CaptureEnded) -> dict[str, Any]:
    return {
        "reason": enum_name(pb.EndReason, ended.reason, "END_REASON_"),
        "message": ended.message or None,
        "packets": ended.packets,
        "packets_lost": ended.packets_lost,
        "counters": counters_to_dict(ended.counters) if ended.HasField("counters") else None,
        "cleaned_up": ended.cleaned_up,
    }


def document(
    command: str,
    results: Mapping[str, Any],
    errors: Mapping[str, Mapping[str, str]],
    **extra: Any,
) -> dict[str, Any]:
    """The one JSON document of a non-capture command."""
    return {
        "schema_version": SCHEMA_VERSION,
        "command": command,
        **extra,
        "results": dict(results),
        "errors": {k: dict(v) for k, v in errors.items()},
    }


def dumps(doc: Any) -> str:
    return json_printable(json.dumps(doc, indent=2, ensure_ascii=False))


def dumps_yaml(doc: Any) -> str:
    """The document as YAML (-o yaml): the same keys and values as its JSON, in the same order;
    control characters escaped by YAML's double-quoted strings."""
    import yaml

    # Through JSON first: the same values as -o json (whatever json.dumps makes of them).
    plain = json.loads(json.dumps(doc))
    return yaml.safe_dump(plain, sort_keys=False, allow_unicode=True, width=1 << 30).rstrip("\n")
