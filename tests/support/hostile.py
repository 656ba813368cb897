"""Fake node servers that answer with hostile content: a real gRPC server on loopback whose
NodeInspector returns names carrying terminal escape sequences, or malformed answers.

Only the node's answers are fake; the client (a real `winspect` process) is the one under test.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass

import grpc

from winspect.v1 import winspect_pb2 as pb
from winspect.v1 import winspect_pb2_grpc as pb_grpc

# Set the title (OSC 0), clear the screen, return to the line's start, write the clipboard (OSC 52),
# reverse the text (U+202E, U+2066..U+2069), C1 CSI and DEL.
HOSTILE = (
    "\x1b]0;pwned\x07\x1b[2J\rEVIL\u202eoof\x1b]52;c;aGVsbG8K\x07\u2066iso\u2069\u2067\u2068\x9b31m\x7fend"
)
# What a terminal reacts to: none of these may reach stdout or stderr raw.
CONTROL = ["\x1b", "\x07", "\r", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\x9b", "\x7f"]
# How the escaped title sequence reads.
ESCAPED_TITLE = "\\x1b]0;pwned\\x07"

NETWORK_ID = "6a1f9c2e-0000-4000-8000-000000000001"


def _network(name: str) -> str:
    return json.dumps(
        {
            "ID": NETWORK_ID,
            "Name": name,
            "Type": name,
            "Subnets": [{"AddressPrefix": name, "GatewayAddress": "10.0.0.1"}],
            "ManagementIP": name,
        }
    )


def _endpoint(name: str) -> str:
    return json.dumps(
        {
            "ID": "6a1f9c2e-0000-4000-8000-000000000002",
            "Name": name,
            "IPAddress": name,
            "MacAddress": name,
            "VirtualNetwork": NETWORK_ID,
            "VirtualNetworkName": name,
            "State": 2,
        }
    )


def deeply_nested(depth: int) -> str:
    return "[" * depth + "]" * depth


class HostileNode(pb_grpc.NodeInspectorServicer):
    """Every string the client may print carries HOSTILE; `nested` answers HNS with a
    deeply nested JSON document instead; `fail` refuses every call with HOSTILE details."""

    def __init__(self, *, nested: int = 0, fail: bool = False) -> None:
        self.nested = nested
        self.fail = fail

    def _refuse(self, context: grpc.ServicerContext) -> None:
        if self.fail:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"tool said: {HOSTILE}")

    def _info(self) -> pb.CaptureInfo:
        return pb.CaptureInfo(
            session_id=HOSTILE,
            requester=HOSTILE,
            pktmon_filters=[HOSTILE],
            components=[pb.CaptureComponent(id=7, name=HOSTILE)],
        )

    def NodeInfo(self, request: pb.NodeInfoRequest, context: grpc.ServicerContext) -> pb.NodeInfoResponse:
        self._refuse(context)
        return pb.NodeInfoResponse(
            hostname=HOSTILE,
            os=HOSTILE,
            os_build=HOSTILE,
            version=HOSTILE,
            operations=[pb.OperationStatus(operation=pb.OPERATION_CAPTURE, available=False, reason=HOSTILE)],
            capture=self._info(),
        )

    def GetHns(self, request: pb.HnsRequest, context: grpc.ServicerContext) -> pb.HnsResponse:
        self._refuse(context)
        if self.nested:
            objects = [pb.HnsObject(id="deep", json=deeply_nested(self.nested))]
            sections = [
                pb.HnsSection(type=t, objects=objects)
                for t in (pb.HNS_OBJECT_TYPE_NETWORKS, pb.HNS_OBJECT_TYPE_ENDPOINTS)
            ]
            return pb.HnsResponse(sections=sections)
        return pb.HnsResponse(
            sections=[
                pb.HnsSection(
                    type=pb.HNS_OBJECT_TYPE_NETWORKS,
                    # The second as a tool may print it: control characters raw, not JSON escapes.
                    objects=[
                        pb.HnsObject(id=NETWORK_ID, json=_network(HOSTILE)),
                        pb.HnsObject(id="raw", json='{"ID": "raw", "Name": "' + HOSTILE + '"}'),
                    ],
                ),
                pb.HnsSection(
                    type=pb.HNS_OBJECT_TYPE_ENDPOINTS, objects=[pb.HnsObject(id="e", json=_endpoint(HOSTILE))]
                ),
            ]
        )

    def _counters(self) -> pb.CountersResponse:
        row = pb.CounterRow(
            group=HOSTILE,
            component_id=7,
            component_name=HOSTILE,
            counter_type=HOSTILE,
            direction=pb.DIRECTION_RX,
            packets=1,
            bytes=60,
        )
        return pb.CountersResponse(capture_running=True, capture=self._info(), rows=[row])

    def GetCounters(self, request: pb.CountersRequest, context: grpc.ServicerContext) -> pb.CountersResponse:
        self._refuse(context)
        return self._counters()

    def GetVfpCounters(
        self, request: pb.VfpCountersRequest, context: grpc.ServicerContext
    ) -> pb.VfpCountersResponse:
        self._refuse(context)
        direction = pb.VfpDirectionCounters(
            direction=pb.DIRECTION_RX, counters=[pb.NamedCounter(name=HOSTILE, value=3)]
        )
        port = pb.VfpPortCounters(
            role=pb.VFP_PORT_ROLE_POD, port_guid=HOSTILE, friendly_name=HOSTILE, directions=[direction]
        )
        return pb.VfpCountersResponse(ports=[port])

    def Capture(self, request: pb.CaptureRequest, context: grpc.ServicerContext) -> Iterator[pb.CaptureEvent]:
        self._refuse(context)
        yield pb.CaptureEvent(started=self._info())
        now = int(time.time())
        flow = pb.Packet(
            component_id=7,
            component_name=HOSTILE,
            direction=pb.DIRECTION_RX,
            type=pb.PACKET_TYPE_FLOW,
            src_mac=HOSTILE,
            dst_mac=HOSTILE,
            src_ip=HOSTILE,
            dst_ip=HOSTILE,
            protocol=HOSTILE,
            tcp_flags=HOSTILE,
            frame_type=HOSTILE,
            summary=HOSTILE,
            length=60,
        )
        flow.timestamp.seconds = now
        drop = pb.Packet()
        drop.CopyFrom(flow)
        drop.type = pb.PACKET_TYPE_DROP
        drop.drop_reason = HOSTILE
        drop.drop_location = HOSTILE
        raw = pb.Packet(component_id=7, raw=HOSTILE)
        raw.timestamp.seconds = now
        yield pb.CaptureEvent(packets=pb.PacketBatch(packets=[flow, drop, raw]))
        yield pb.CaptureEvent(stats=pb.CaptureStats(packets=3, packets_lost=1))
        yield pb.CaptureEvent(
            ended=pb.CaptureEnded(
                reason=pb.END_REASON_TOOL_EXITED,
                message=HOSTILE,
                packets=3,
                counters=self._counters(),
                cleaned_up=True,
            )
        )

    def StopCapture(
        self, request: pb.StopCaptureRequest, context: grpc.ServicerContext
    ) -> pb.StopCaptureResponse:
        return pb.StopCaptureResponse(was_running=False, session_id=HOSTILE, cleaned_up=True)


@dataclass
class FakeNode:
    name: str
    host: str
    port: int
    server: grpc.Server

    @property
    def target(self) -> str:
        return f"{self.name}={self.host}:{self.port}"


def start_fake_node(name: str, host: str, servicer: pb_grpc.NodeInspectorServicer) -> FakeNode:
    """A plain-text gRPC server on `host` (a free port) serving `servicer`; stop it with .server.stop."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pb_grpc.add_NodeInspectorServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port(f"{host}:0")
    server.start()
    return FakeNode(name, host, port, server)
