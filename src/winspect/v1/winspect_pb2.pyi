import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Operation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OPERATION_UNSPECIFIED: _ClassVar[Operation]
    OPERATION_CAPTURE: _ClassVar[Operation]
    OPERATION_COUNTERS: _ClassVar[Operation]
    OPERATION_VFP_COUNTERS: _ClassVar[Operation]
    OPERATION_HNS: _ClassVar[Operation]

class PacketType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PACKET_TYPE_UNSPECIFIED: _ClassVar[PacketType]
    PACKET_TYPE_ALL: _ClassVar[PacketType]
    PACKET_TYPE_FLOW: _ClassVar[PacketType]
    PACKET_TYPE_DROP: _ClassVar[PacketType]

class Direction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DIRECTION_UNSPECIFIED: _ClassVar[Direction]
    DIRECTION_RX: _ClassVar[Direction]
    DIRECTION_TX: _ClassVar[Direction]

class Protocol(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROTOCOL_UNSPECIFIED: _ClassVar[Protocol]
    PROTOCOL_TCP: _ClassVar[Protocol]
    PROTOCOL_UDP: _ClassVar[Protocol]
    PROTOCOL_ICMP: _ClassVar[Protocol]
    PROTOCOL_ICMPV6: _ClassVar[Protocol]

class TcpFlag(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TCP_FLAG_UNSPECIFIED: _ClassVar[TcpFlag]
    TCP_FLAG_FIN: _ClassVar[TcpFlag]
    TCP_FLAG_SYN: _ClassVar[TcpFlag]
    TCP_FLAG_RST: _ClassVar[TcpFlag]
    TCP_FLAG_PSH: _ClassVar[TcpFlag]
    TCP_FLAG_ACK: _ClassVar[TcpFlag]
    TCP_FLAG_URG: _ClassVar[TcpFlag]
    TCP_FLAG_ECE: _ClassVar[TcpFlag]
    TCP_FLAG_CWR: _ClassVar[TcpFlag]

class EndReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    END_REASON_UNSPECIFIED: _ClassVar[EndReason]
    END_REASON_DURATION: _ClassVar[EndReason]
    END_REASON_STOPPED: _ClassVar[EndReason]
    END_REASON_CANCELLED: _ClassVar[EndReason]
    END_REASON_SERVER_SHUTDOWN: _ClassVar[EndReason]
    END_REASON_TOOL_EXITED: _ClassVar[EndReason]

class VfpPortRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VFP_PORT_ROLE_UNSPECIFIED: _ClassVar[VfpPortRole]
    VFP_PORT_ROLE_POD: _ClassVar[VfpPortRole]
    VFP_PORT_ROLE_HOST_VNIC: _ClassVar[VfpPortRole]
    VFP_PORT_ROLE_EXTERNAL_ADAPTER: _ClassVar[VfpPortRole]

class HnsObjectType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HNS_OBJECT_TYPE_UNSPECIFIED: _ClassVar[HnsObjectType]
    HNS_OBJECT_TYPE_ALL: _ClassVar[HnsObjectType]
    HNS_OBJECT_TYPE_ENDPOINTS: _ClassVar[HnsObjectType]
    HNS_OBJECT_TYPE_LOADBALANCERS: _ClassVar[HnsObjectType]
    HNS_OBJECT_TYPE_NAMESPACES: _ClassVar[HnsObjectType]
    HNS_OBJECT_TYPE_NETWORKS: _ClassVar[HnsObjectType]
OPERATION_UNSPECIFIED: Operation
OPERATION_CAPTURE: Operation
OPERATION_COUNTERS: Operation
OPERATION_VFP_COUNTERS: Operation
OPERATION_HNS: Operation
PACKET_TYPE_UNSPECIFIED: PacketType
PACKET_TYPE_ALL: PacketType
PACKET_TYPE_FLOW: PacketType
PACKET_TYPE_DROP: PacketType
DIRECTION_UNSPECIFIED: Direction
DIRECTION_RX: Direction
DIRECTION_TX: Direction
PROTOCOL_UNSPECIFIED: Protocol
PROTOCOL_TCP: Protocol
PROTOCOL_UDP: Protocol
PROTOCOL_ICMP: Protocol
PROTOCOL_ICMPV6: Protocol
TCP_FLAG_UNSPECIFIED: TcpFlag
TCP_FLAG_FIN: TcpFlag
TCP_FLAG_SYN: TcpFlag
TCP_FLAG_RST: TcpFlag
TCP_FLAG_PSH: TcpFlag
TCP_FLAG_ACK: TcpFlag
TCP_FLAG_URG: TcpFlag
TCP_FLAG_ECE: TcpFlag
TCP_FLAG_CWR: TcpFlag
END_REASON_UNSPECIFIED: EndReason
END_REASON_DURATION: EndReason
END_REASON_STOPPED: EndReason
END_REASON_CANCELLED: EndReason
END_REASON_SERVER_SHUTDOWN: EndReason
END_REASON_TOOL_EXITED: EndReason
VFP_PORT_ROLE_UNSPECIFIED: VfpPortRole
VFP_PORT_ROLE_POD: VfpPortRole
VFP_PORT_ROLE_HOST_VNIC: VfpPortRole
VFP_PORT_ROLE_EXTERNAL_ADAPTER: VfpPortRole
HNS_OBJECT_TYPE_UNSPECIFIED: HnsObjectType
HNS_OBJECT_TYPE_ALL: HnsObjectType
HNS_OBJECT_TYPE_ENDPOINTS: HnsObjectType
HNS_OBJECT_TYPE_LOADBALANCERS: HnsObjectType
HNS_OBJECT_TYPE_NAMESPACES: HnsObjectType
HNS_OBJECT_TYPE_NETWORKS: HnsObjectType

class NodeInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class OperationStatus(_message.Message):
    __slots__ = ("operation", "available", "reason")
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    operation: Operation
    available: bool
    reason: str
    def __init__(self, operation: _Optional[_Union[Operation, str]] = ..., available: _Optional[bool] = ..., reason: _Optional[str] = ...) -> None: ...

class NodeInfoResponse(_message.Message):
    __slots__ = ("hostname", "os", "os_build", "version", "operations", "capture", "pktmon")
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    OS_FIELD_NUMBER: _ClassVar[int]
    OS_BUILD_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    OPERATIONS_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_FIELD_NUMBER: _ClassVar[int]
    PKTMON_FIELD_NUMBER: _ClassVar[int]
    hostname: str
    os: str
    os_build: str
    version: str
    operations: _containers.RepeatedCompositeFieldContainer[OperationStatus]
    capture: CaptureInfo
    pktmon: PktmonInfo
    def __init__(self, hostname: _Optional[str] = ..., os: _Optional[str] = ..., os_build: _Optional[str] = ..., version: _Optional[str] = ..., operations: _Optional[_Iterable[_Union[OperationStatus, _Mapping]]] = ..., capture: _Optional[_Union[CaptureInfo, _Mapping]] = ..., pktmon: _Optional[_Union[PktmonInfo, _Mapping]] = ...) -> None: ...

class PktmonInfo(_message.Message):
    __slots__ = ("file_version", "command_line", "features", "missing", "unrestored_filters", "probe_error")
    FILE_VERSION_FIELD_NUMBER: _ClassVar[int]
    COMMAND_LINE_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    MISSING_FIELD_NUMBER: _ClassVar[int]
    UNRESTORED_FILTERS_FIELD_NUMBER: _ClassVar[int]
    PROBE_ERROR_FIELD_NUMBER: _ClassVar[int]
    file_version: str
    command_line: str
    features: _containers.RepeatedScalarFieldContainer[str]
    missing: _containers.RepeatedScalarFieldContainer[str]
    unrestored_filters: _containers.RepeatedScalarFieldContainer[str]
    probe_error: str
    def __init__(self, file_version: _Optional[str] = ..., command_line: _Optional[str] = ..., features: _Optional[_Iterable[str]] = ..., missing: _Optional[_Iterable[str]] = ..., unrestored_filters: _Optional[_Iterable[str]] = ..., probe_error: _Optional[str] = ...) -> None: ...

class ProtocolFilter(_message.Message):
    __slots__ = ("protocol", "tcp_flags")
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    TCP_FLAGS_FIELD_NUMBER: _ClassVar[int]
    protocol: Protocol
    tcp_flags: _containers.RepeatedScalarFieldContainer[TcpFlag]
    def __init__(self, protocol: _Optional[_Union[Protocol, str]] = ..., tcp_flags: _Optional[_Iterable[_Union[TcpFlag, str]]] = ...) -> None: ...

class PodRef(_message.Message):
    __slots__ = ("namespace", "name", "ip")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    IP_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    name: str
    ip: str
    def __init__(self, namespace: _Optional[str] = ..., name: _Optional[str] = ..., ip: _Optional[str] = ...) -> None: ...

class CaptureRequest(_message.Message):
    __slots__ = ("ips", "macs", "ports", "protocols", "packet_type", "pods", "duration_seconds", "counters_only", "pkt_size", "requester", "frames", "take_over")
    IPS_FIELD_NUMBER: _ClassVar[int]
    MACS_FIELD_NUMBER: _ClassVar[int]
    PORTS_FIELD_NUMBER: _ClassVar[int]
    PROTOCOLS_FIELD_NUMBER: _ClassVar[int]
    PACKET_TYPE_FIELD_NUMBER: _ClassVar[int]
    PODS_FIELD_NUMBER: _ClassVar[int]
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    COUNTERS_ONLY_FIELD_NUMBER: _ClassVar[int]
    PKT_SIZE_FIELD_NUMBER: _ClassVar[int]
    REQUESTER_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    TAKE_OVER_FIELD_NUMBER: _ClassVar[int]
    ips: _containers.RepeatedScalarFieldContainer[str]
    macs: _containers.RepeatedScalarFieldContainer[str]
    ports: _containers.RepeatedScalarFieldContainer[int]
    protocols: _containers.RepeatedCompositeFieldContainer[ProtocolFilter]
    packet_type: PacketType
    pods: _containers.RepeatedCompositeFieldContainer[PodRef]
    duration_seconds: int
    counters_only: bool
    pkt_size: int
    requester: str
    frames: bool
    take_over: bool
    def __init__(self, ips: _Optional[_Iterable[str]] = ..., macs: _Optional[_Iterable[str]] = ..., ports: _Optional[_Iterable[int]] = ..., protocols: _Optional[_Iterable[_Union[ProtocolFilter, _Mapping]]] = ..., packet_type: _Optional[_Union[PacketType, str]] = ..., pods: _Optional[_Iterable[_Union[PodRef, _Mapping]]] = ..., duration_seconds: _Optional[int] = ..., counters_only: _Optional[bool] = ..., pkt_size: _Optional[int] = ..., requester: _Optional[str] = ..., frames: _Optional[bool] = ..., take_over: _Optional[bool] = ...) -> None: ...

class CaptureInfo(_message.Message):
    __slots__ = ("session_id", "started_at", "requester", "pktmon_filters", "pktmon_start_args", "counters_only", "components", "frames", "taken_over")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    REQUESTER_FIELD_NUMBER: _ClassVar[int]
    PKTMON_FILTERS_FIELD_NUMBER: _ClassVar[int]
    PKTMON_START_ARGS_FIELD_NUMBER: _ClassVar[int]
    COUNTERS_ONLY_FIELD_NUMBER: _ClassVar[int]
    COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    TAKEN_OVER_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    started_at: _timestamp_pb2.Timestamp
    requester: str
    pktmon_filters: _containers.RepeatedScalarFieldContainer[str]
    pktmon_start_args: _containers.RepeatedScalarFieldContainer[str]
    counters_only: bool
    components: _containers.RepeatedCompositeFieldContainer[CaptureComponent]
    frames: bool
    taken_over: str
    def __init__(self, session_id: _Optional[str] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., requester: _Optional[str] = ..., pktmon_filters: _Optional[_Iterable[str]] = ..., pktmon_start_args: _Optional[_Iterable[str]] = ..., counters_only: _Optional[bool] = ..., components: _Optional[_Iterable[_Union[CaptureComponent, _Mapping]]] = ..., frames: _Optional[bool] = ..., taken_over: _Optional[str] = ...) -> None: ...

class CaptureComponent(_message.Message):
    __slots__ = ("id", "name", "mac", "endpoint_id", "ips", "pod")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    IPS_FIELD_NUMBER: _ClassVar[int]
    POD_FIELD_NUMBER: _ClassVar[int]
    id: int
    name: str
    mac: str
    endpoint_id: str
    ips: _containers.RepeatedScalarFieldContainer[str]
    pod: PodRef
    def __init__(self, id: _Optional[int] = ..., name: _Optional[str] = ..., mac: _Optional[str] = ..., endpoint_id: _Optional[str] = ..., ips: _Optional[_Iterable[str]] = ..., pod: _Optional[_Union[PodRef, _Mapping]] = ...) -> None: ...

class Packet(_message.Message):
    __slots__ = ("node", "timestamp", "group_id", "packet_number", "appearance", "direction", "frame_type", "component_id", "component_name", "edge", "filter_id", "type", "drop_reason", "drop_location", "original_size", "logged_size", "src_mac", "dst_mac", "ethertype", "src_ip", "dst_ip", "ip_protocol", "protocol", "src_port", "dst_port", "tcp_flags", "length", "summary", "frame", "raw", "outer")
    NODE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    PACKET_NUMBER_FIELD_NUMBER: _ClassVar[int]
    APPEARANCE_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    FRAME_TYPE_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_ID_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_NAME_FIELD_NUMBER: _ClassVar[int]
    EDGE_FIELD_NUMBER: _ClassVar[int]
    FILTER_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DROP_REASON_FIELD_NUMBER: _ClassVar[int]
    DROP_LOCATION_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    LOGGED_SIZE_FIELD_NUMBER: _ClassVar[int]
    SRC_MAC_FIELD_NUMBER: _ClassVar[int]
    DST_MAC_FIELD_NUMBER: _ClassVar[int]
    ETHERTYPE_FIELD_NUMBER: _ClassVar[int]
    SRC_IP_FIELD_NUMBER: _ClassVar[int]
    DST_IP_FIELD_NUMBER: _ClassVar[int]
    IP_PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    SRC_PORT_FIELD_NUMBER: _ClassVar[int]
    DST_PORT_FIELD_NUMBER: _ClassVar[int]
    TCP_FLAGS_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    RAW_FIELD_NUMBER: _ClassVar[int]
    OUTER_FIELD_NUMBER: _ClassVar[int]
    node: str
    timestamp: _timestamp_pb2.Timestamp
    group_id: int
    packet_number: int
    appearance: int
    direction: Direction
    frame_type: str
    component_id: int
    component_name: str
    edge: int
    filter_id: int
    type: PacketType
    drop_reason: str
    drop_location: str
    original_size: int
    logged_size: int
    src_mac: str
    dst_mac: str
    ethertype: int
    src_ip: str
    dst_ip: str
    ip_protocol: int
    protocol: str
    src_port: int
    dst_port: int
    tcp_flags: str
    length: int
    summary: str
    frame: bytes
    raw: str
    outer: Encapsulation
    def __init__(self, node: _Optional[str] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., group_id: _Optional[int] = ..., packet_number: _Optional[int] = ..., appearance: _Optional[int] = ..., direction: _Optional[_Union[Direction, str]] = ..., frame_type: _Optional[str] = ..., component_id: _Optional[int] = ..., component_name: _Optional[str] = ..., edge: _Optional[int] = ..., filter_id: _Optional[int] = ..., type: _Optional[_Union[PacketType, str]] = ..., drop_reason: _Optional[str] = ..., drop_location: _Optional[str] = ..., original_size: _Optional[int] = ..., logged_size: _Optional[int] = ..., src_mac: _Optional[str] = ..., dst_mac: _Optional[str] = ..., ethertype: _Optional[int] = ..., src_ip: _Optional[str] = ..., dst_ip: _Optional[str] = ..., ip_protocol: _Optional[int] = ..., protocol: _Optional[str] = ..., src_port: _Optional[int] = ..., dst_port: _Optional[int] = ..., tcp_flags: _Optional[str] = ..., length: _Optional[int] = ..., summary: _Optional[str] = ..., frame: _Optional[bytes] = ..., raw: _Optional[str] = ..., outer: _Optional[_Union[Encapsulation, _Mapping]] = ...) -> None: ...

class Encapsulation(_message.Message):
    __slots__ = ("kind", "vni", "src_mac", "dst_mac", "src_ip", "dst_ip", "src_port", "dst_port", "summary")
    KIND_FIELD_NUMBER: _ClassVar[int]
    VNI_FIELD_NUMBER: _ClassVar[int]
    SRC_MAC_FIELD_NUMBER: _ClassVar[int]
    DST_MAC_FIELD_NUMBER: _ClassVar[int]
    SRC_IP_FIELD_NUMBER: _ClassVar[int]
    DST_IP_FIELD_NUMBER: _ClassVar[int]
    SRC_PORT_FIELD_NUMBER: _ClassVar[int]
    DST_PORT_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    kind: str
    vni: int
    src_mac: str
    dst_mac: str
    src_ip: str
    dst_ip: str
    src_port: int
    dst_port: int
    summary: str
    def __init__(self, kind: _Optional[str] = ..., vni: _Optional[int] = ..., src_mac: _Optional[str] = ..., dst_mac: _Optional[str] = ..., src_ip: _Optional[str] = ..., dst_ip: _Optional[str] = ..., src_port: _Optional[int] = ..., dst_port: _Optional[int] = ..., summary: _Optional[str] = ...) -> None: ...

class PacketBatch(_message.Message):
    __slots__ = ("packets",)
    PACKETS_FIELD_NUMBER: _ClassVar[int]
    packets: _containers.RepeatedCompositeFieldContainer[Packet]
    def __init__(self, packets: _Optional[_Iterable[_Union[Packet, _Mapping]]] = ...) -> None: ...

class CaptureEnded(_message.Message):
    __slots__ = ("reason", "message", "packets", "packets_lost", "counters", "cleaned_up", "log_bytes_unsent", "packets_unsent_estimate")
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PACKETS_FIELD_NUMBER: _ClassVar[int]
    PACKETS_LOST_FIELD_NUMBER: _ClassVar[int]
    COUNTERS_FIELD_NUMBER: _ClassVar[int]
    CLEANED_UP_FIELD_NUMBER: _ClassVar[int]
    LOG_BYTES_UNSENT_FIELD_NUMBER: _ClassVar[int]
    PACKETS_UNSENT_ESTIMATE_FIELD_NUMBER: _ClassVar[int]
    reason: EndReason
    message: str
    packets: int
    packets_lost: int
    counters: CountersResponse
    cleaned_up: bool
    log_bytes_unsent: int
    packets_unsent_estimate: int
    def __init__(self, reason: _Optional[_Union[EndReason, str]] = ..., message: _Optional[str] = ..., packets: _Optional[int] = ..., packets_lost: _Optional[int] = ..., counters: _Optional[_Union[CountersResponse, _Mapping]] = ..., cleaned_up: _Optional[bool] = ..., log_bytes_unsent: _Optional[int] = ..., packets_unsent_estimate: _Optional[int] = ...) -> None: ...

class CaptureStats(_message.Message):
    __slots__ = ("packets", "packets_lost", "draining", "log_bytes_pending", "packets_pending_estimate")
    PACKETS_FIELD_NUMBER: _ClassVar[int]
    PACKETS_LOST_FIELD_NUMBER: _ClassVar[int]
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    LOG_BYTES_PENDING_FIELD_NUMBER: _ClassVar[int]
    PACKETS_PENDING_ESTIMATE_FIELD_NUMBER: _ClassVar[int]
    packets: int
    packets_lost: int
    draining: bool
    log_bytes_pending: int
    packets_pending_estimate: int
    def __init__(self, packets: _Optional[int] = ..., packets_lost: _Optional[int] = ..., draining: _Optional[bool] = ..., log_bytes_pending: _Optional[int] = ..., packets_pending_estimate: _Optional[int] = ...) -> None: ...

class CaptureNotice(_message.Message):
    __slots__ = ("kind", "lines")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[CaptureNotice.Kind]
        KIND_STATUS: _ClassVar[CaptureNotice.Kind]
        KIND_WARNING: _ClassVar[CaptureNotice.Kind]
    KIND_UNSPECIFIED: CaptureNotice.Kind
    KIND_STATUS: CaptureNotice.Kind
    KIND_WARNING: CaptureNotice.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    kind: CaptureNotice.Kind
    lines: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, kind: _Optional[_Union[CaptureNotice.Kind, str]] = ..., lines: _Optional[_Iterable[str]] = ...) -> None: ...

class CaptureEvent(_message.Message):
    __slots__ = ("started", "packets", "stats", "ended", "notice")
    STARTED_FIELD_NUMBER: _ClassVar[int]
    PACKETS_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    ENDED_FIELD_NUMBER: _ClassVar[int]
    NOTICE_FIELD_NUMBER: _ClassVar[int]
    started: CaptureInfo
    packets: PacketBatch
    stats: CaptureStats
    ended: CaptureEnded
    notice: CaptureNotice
    def __init__(self, started: _Optional[_Union[CaptureInfo, _Mapping]] = ..., packets: _Optional[_Union[PacketBatch, _Mapping]] = ..., stats: _Optional[_Union[CaptureStats, _Mapping]] = ..., ended: _Optional[_Union[CaptureEnded, _Mapping]] = ..., notice: _Optional[_Union[CaptureNotice, _Mapping]] = ...) -> None: ...

class StopCaptureRequest(_message.Message):
    __slots__ = ("session_id", "requester")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    REQUESTER_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    requester: str
    def __init__(self, session_id: _Optional[str] = ..., requester: _Optional[str] = ...) -> None: ...

class StopCaptureResponse(_message.Message):
    __slots__ = ("was_running", "session_id", "cleaned_up")
    WAS_RUNNING_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    CLEANED_UP_FIELD_NUMBER: _ClassVar[int]
    was_running: bool
    session_id: str
    cleaned_up: bool
    def __init__(self, was_running: _Optional[bool] = ..., session_id: _Optional[str] = ..., cleaned_up: _Optional[bool] = ...) -> None: ...

class CountersRequest(_message.Message):
    __slots__ = ("include_hidden", "describe_components")
    INCLUDE_HIDDEN_FIELD_NUMBER: _ClassVar[int]
    DESCRIBE_COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    include_hidden: bool
    describe_components: bool
    def __init__(self, include_hidden: _Optional[bool] = ..., describe_components: _Optional[bool] = ...) -> None: ...

class CounterRow(_message.Message):
    __slots__ = ("group", "component_id", "component_name", "counter_type", "direction", "packets", "bytes")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_ID_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_NAME_FIELD_NUMBER: _ClassVar[int]
    COUNTER_TYPE_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    PACKETS_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    group: str
    component_id: int
    component_name: str
    counter_type: str
    direction: Direction
    packets: int
    bytes: int
    def __init__(self, group: _Optional[str] = ..., component_id: _Optional[int] = ..., component_name: _Optional[str] = ..., counter_type: _Optional[str] = ..., direction: _Optional[_Union[Direction, str]] = ..., packets: _Optional[int] = ..., bytes: _Optional[int] = ...) -> None: ...

class CountersResponse(_message.Message):
    __slots__ = ("capture_running", "capture", "rows", "raw_text", "foreign_session", "components")
    CAPTURE_RUNNING_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    RAW_TEXT_FIELD_NUMBER: _ClassVar[int]
    FOREIGN_SESSION_FIELD_NUMBER: _ClassVar[int]
    COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    capture_running: bool
    capture: CaptureInfo
    rows: _containers.RepeatedCompositeFieldContainer[CounterRow]
    raw_text: str
    foreign_session: str
    components: _containers.RepeatedCompositeFieldContainer[CaptureComponent]
    def __init__(self, capture_running: _Optional[bool] = ..., capture: _Optional[_Union[CaptureInfo, _Mapping]] = ..., rows: _Optional[_Iterable[_Union[CounterRow, _Mapping]]] = ..., raw_text: _Optional[str] = ..., foreign_session: _Optional[str] = ..., components: _Optional[_Iterable[_Union[CaptureComponent, _Mapping]]] = ...) -> None: ...

class VfpCountersRequest(_message.Message):
    __slots__ = ("pod", "detailed")
    POD_FIELD_NUMBER: _ClassVar[int]
    DETAILED_FIELD_NUMBER: _ClassVar[int]
    pod: PodRef
    detailed: bool
    def __init__(self, pod: _Optional[_Union[PodRef, _Mapping]] = ..., detailed: _Optional[bool] = ...) -> None: ...

class NamedCounter(_message.Message):
    __slots__ = ("name", "value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: int
    def __init__(self, name: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...

class VfpDirectionCounters(_message.Message):
    __slots__ = ("direction", "counters")
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    COUNTERS_FIELD_NUMBER: _ClassVar[int]
    direction: Direction
    counters: _containers.RepeatedCompositeFieldContainer[NamedCounter]
    def __init__(self, direction: _Optional[_Union[Direction, str]] = ..., counters: _Optional[_Iterable[_Union[NamedCounter, _Mapping]]] = ...) -> None: ...

class VfpPortCounters(_message.Message):
    __slots__ = ("role", "port_guid", "friendly_name", "directions")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    PORT_GUID_FIELD_NUMBER: _ClassVar[int]
    FRIENDLY_NAME_FIELD_NUMBER: _ClassVar[int]
    DIRECTIONS_FIELD_NUMBER: _ClassVar[int]
    role: VfpPortRole
    port_guid: str
    friendly_name: str
    directions: _containers.RepeatedCompositeFieldContainer[VfpDirectionCounters]
    def __init__(self, role: _Optional[_Union[VfpPortRole, str]] = ..., port_guid: _Optional[str] = ..., friendly_name: _Optional[str] = ..., directions: _Optional[_Iterable[_Union[VfpDirectionCounters, _Mapping]]] = ...) -> None: ...

class VfpCountersResponse(_message.Message):
    __slots__ = ("ports",)
    PORTS_FIELD_NUMBER: _ClassVar[int]
    ports: _containers.RepeatedCompositeFieldContainer[VfpPortCounters]
    def __init__(self, ports: _Optional[_Iterable[_Union[VfpPortCounters, _Mapping]]] = ...) -> None: ...

class HnsRequest(_message.Message):
    __slots__ = ("type", "objects_only")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_ONLY_FIELD_NUMBER: _ClassVar[int]
    type: HnsObjectType
    objects_only: bool
    def __init__(self, type: _Optional[_Union[HnsObjectType, str]] = ..., objects_only: _Optional[bool] = ...) -> None: ...

class HnsObject(_message.Message):
    __slots__ = ("id", "json")
    ID_FIELD_NUMBER: _ClassVar[int]
    JSON_FIELD_NUMBER: _ClassVar[int]
    id: str
    json: str
    def __init__(self, id: _Optional[str] = ..., json: _Optional[str] = ...) -> None: ...

class HnsSection(_message.Message):
    __slots__ = ("type", "objects", "summary_text")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_TEXT_FIELD_NUMBER: _ClassVar[int]
    type: HnsObjectType
    objects: _containers.RepeatedCompositeFieldContainer[HnsObject]
    summary_text: str
    def __init__(self, type: _Optional[_Union[HnsObjectType, str]] = ..., objects: _Optional[_Iterable[_Union[HnsObject, _Mapping]]] = ..., summary_text: _Optional[str] = ...) -> None: ...

class HnsResponse(_message.Message):
    __slots__ = ("sections",)
    SECTIONS_FIELD_NUMBER: _ClassVar[int]
    sections: _containers.RepeatedCompositeFieldContainer[HnsSection]
    def __init__(self, sections: _Optional[_Iterable[_Union[HnsSection, _Mapping]]] = ...) -> None: ...
