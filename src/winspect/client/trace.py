"""`winspect trace` engine: who is traced, the capture on their nodes, and what explains the drops.

1. Resolve (Kubernetes): the source pod; the destination pod, the Service's
   ClusterIPs, ports and backend pods, or an address. The nodes involved are
   the Windows nodes that host them (plan_pods), no others.
2. Capture on those nodes through the capture engine (client.capture: one
   stream per node, stopped everywhere on Ctrl+C), every packet type, with
   pktmon filters narrowed to the pair's addresses (and the port and protocol).
3. Correlate (client.trace_flows) and, for each VFP drop, read that pod's VFP
   rules (GetVfpRules) and HNS endpoint (GetHns) on the node where it was
   dropped, through the same fan-out, and explain it (client.trace_explain).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from winspect.client.capture_request import CaptureOptions
from winspect.client.fanout import NodeFailure
from winspect.client.filters import PodSpec, ProtocolSpec, parse_pods
from winspect.client.names import Names
from winspect.client.network_policies import PolicyLookup
from winspect.client.trace_explain import Explanation, explain_reason, explain_refused, explain_vfp_drop
from winspect.client.trace_flows import DROPPED, REFUSED, Flow, Seen, Subject, address_of
from winspect.errors import UsageError
from winspect.v1 import winspect_pb2 as pb

_DIRECTIONS = {pb.DIRECTION_RX: "Rx", pb.DIRECTION_TX: "Tx"}
# tcpdump's text of an ICMP echo (the summary pktmon prints): the echo's identifier and sequence.
_ICMP_ECHO = re.compile(r"\bICMP echo (request|reply), id (\d+), seq (\d+)")
# ... of an ICMP port unreachable: `ICMP 10.224.1.15 udp port 9999 unreachable`.
_ICMP_PORT_UNREACHABLE = re.compile(r"\bICMP \S+ (udp|tcp) port (\d+) unreachable")


@dataclass(frozen=True)
class Destination:
    """TO as typed: a pod, a Service (svc/NAME) or an address, with an optional port."""

    pod: PodSpec | None = None
    ip: str = ""
    port: int | None = None

    @property
    def is_service(self) -> bool:
        return self.pod is not None and self.pod.workload == "service"


def parse_destination(text: str, *, allow_ip: bool) -> Destination:
    """`[NS/]POD`, `svc/NAME`, `IP` or `IP:PORT` (`[v6]:PORT`)."""
    value = text.strip()
    host, port = value, None
    if value.startswith("["):
        inside, _, rest = value[1:].partition("]")
        host, port = inside, _port(rest.removeprefix(":"), text) if rest else None
    elif value.count(":") == 1:
        head, _, tail = value.partition(":")
        host, port = head, _port(tail, text)
    try:
        return Destination(ip=str(ipaddress.ip_address(host)), port=port)
    except ValueError:
        if port is not None or value.startswith("["):
            raise UsageError(
                f"invalid destination {text!r}: expected an IP address before the port"
            ) from None
    if "=" in value and not allow_ip:
        raise UsageError(f"invalid destination {text!r}: a pod, svc/NAME, or IP[:PORT]")
    (spec,) = parse_pods([value], "TO", allow_ip=allow_ip)
    if spec.workload not in (None, "service"):
        raise UsageError(
            f"invalid destination {text!r}: a pod, svc/NAME, or IP[:PORT] (not a {spec.workload})"
        )
    return Destination(pod=spec)


def _port(text: str, whole: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise UsageError(f"invalid port {text!r} in {whole!r}: expected 1-65535")
    return int(text)


@dataclass
class TracePlanExtra:
    """What the capture plan does not say: the Service's frontend, and which pods are whose."""

    source: Any  # PodOnNode
    destination_pods: list[Any]  # PodOnNode
    vips: list[str] = field(default_factory=list)
    service_ports: list[tuple[int, int, str]] = field(default_factory=list)  # (port, targetPort, protocol)
    address: str = ""

    def subject(self) -> Subject:
        # A Service's VIPs first: what the source pod connects to, before VFP's NAT picks a backend.
        ips = self.vips + [p.ip for p in self.destination_pods] + ([self.address] if self.address else [])
        return Subject(
            source_ip=self.source.ip,
            source_pod=f"{self.source.namespace}/{self.source.name}",
            source_node=self.source.node,
            destination_ips=tuple(dict.fromkeys(ips)),
            destination_pods={p.ip: (f"{p.namespace}/{p.name}", p.node) for p in self.destination_pods},
        )


def trace_ports(extra: TracePlanExtra, port: int | None) -> list[int]:
    """The ports to filter on: the one asked for and, for a Service port, its target port too."""
    if port is None:
        return []
    ports = [port]
    for front, target, _ in extra.service_ports:
        if front == port and target not in ports:
            ports.append(target)
    return ports


def capture_options(
    extra: TracePlanExtra, port: int | None, protocol: str | None, duration: int, frames: bool = False
) -> CaptureOptions:
    # The pair: the source pod first, then the destination's addresses (pod, VIPs and backends).
    # Not the pods' MACs: a filter's values must all match, and a packet that crossed nodes
    # carries the node's and the gateway's MACs, not the pod's, so MACs would lose routed packets.
    return CaptureOptions(
        ips=[extra.source.ip, *extra.subject().destination_ips],
        ports=trace_ports(extra, port),
        protocols=[ProtocolSpec(protocol)] if protocol else [],
        packet_type="all",
        duration=duration,
        frames=frames,
    )


def service_frontend(cluster: Any, namespace: str, name: str) -> tuple[list[str], list[tuple[int, int, str]]]:
    """A Service's ClusterIPs and (port, targetPort, protocol) list."""
    from lightkube.resources.core_v1 import Service

    service = cluster.call(
        f"read service {namespace}/{name}", lambda c: c.get(Service, name, namespace=namespace)
    )
    spec = service.spec
    ips = [ip for ip in (spec.clusterIPs or [spec.clusterIP]) if ip and ip != "None"]
    ports = []
    for p in spec.ports or []:
        target = p.targetPort if isinstance(p.targetPort, int) else p.port
        ports.append((int(p.port), int(target), p.protocol or "TCP"))
    return ips, ports


def icmp_echo(summary: str) -> tuple[str, int, int] | None:
    """("echo request" | "echo reply", identifier, sequence) of an ICMP echo's summary, else None."""
    m = _ICMP_ECHO.search(summary)
    return (f"echo {m.group(1)}", int(m.group(2)), int(m.group(3))) if m else None


def port_unreachable(summary: str) -> tuple[str, int] | None:
    """("udp" | "tcp", port) of an ICMP port unreachable's summary, else None."""
    m = _ICMP_PORT_UNREACHABLE.search(summary)
    return (m.group(1), int(m.group(2))) if m else None


def to_seen(node: str, packet: pb.Packet, names: Names) -> Seen:
    """A packet of the capture as the correlation reads it, its component named."""
    label = names.component(node, packet)
    echo = icmp_echo(packet.summary) if packet.protocol == "ICMP" else None
    unreachable = port_unreachable(packet.summary) if packet.protocol == "ICMP" and not echo else None
    return Seen(
        node=node,
        time_ns=packet.timestamp.seconds * 1_000_000_000 + packet.timestamp.nanos,
        group_id=packet.group_id,
        appearance=packet.appearance,
        component=label.short,
        pod=label.pod,
        direction=_DIRECTIONS.get(packet.direction, ""),
        protocol=packet.protocol,
        src_ip=packet.src_ip,
        dst_ip=packet.dst_ip,
        src_port=packet.src_port if packet.HasField("src_port") else None,
        dst_port=packet.dst_port if packet.HasField("dst_port") else None,
        tcp_flags=packet.tcp_flags,
        length=packet.length if packet.HasField("length") else None,
        drop_reason=packet.drop_reason if packet.type == pb.PACKET_TYPE_DROP else "",
        drop_location=packet.drop_location if packet.type == pb.PACKET_TYPE_DROP else "",
        icmp=echo[0]
        if echo
        else f"{unreachable[0]} port {unreachable[1]} unreachable"
        if unreachable
        else "",
        icmp_id=echo[1] if echo else None,
        icmp_seq=echo[2] if echo else None,
        unreachable_port=unreachable[1] if unreachable else None,
    )


@dataclass(frozen=True)
class PortQuestion:
    """Whose VFP port to read on which node to explain a drop, and in which direction it went."""

    node: str
    namespace: str
    name: str
    ip: str
    inbound: bool


def vfp_question(flow: Flow, extra: TracePlanExtra) -> PortQuestion | None:
    """The pod port whose rules explain the flow's VFP drop (None for other verdicts)."""
    drop = flow.verdict.drop
    if flow.verdict.status != DROPPED or drop is None or "VFP" not in (drop.component + drop.drop_reason):
        return None
    pods = [extra.source, *extra.destination_pods]
    # A packet is dropped on the way into the port of the pod it goes to, or out of its sender's.
    for pod in pods:
        if pod.node != drop.node:
            continue
        if pod.ip == drop.dst_ip:
            return PortQuestion(drop.node, pod.namespace, pod.name, pod.ip, inbound=True)
    for pod in pods:
        if pod.node == drop.node and pod.ip == drop.src_ip:
            return PortQuestion(drop.node, pod.namespace, pod.name, pod.ip, inbound=False)
    return None


def endpoint_of(hns: pb.HnsResponse, ip: str) -> dict[str, Any] | None:
    import json

    for section in hns.sections:
        for obj in section.objects:
            try:
                doc = json.loads(obj.json)
            except ValueError:
                continue
            if isinstance(doc, dict) and doc.get("IPAddress") == ip and not doc.get("IsRemoteEndpoint"):
                return doc
    return None


@dataclass(frozen=True)
class TracedPod:
    """A pod of the trace as the report names it: its role, address, node and MAC (from HNS)."""

    role: str  # "source" | "destination"
    namespace: str
    name: str
    ip: str
    node: str
    mac: str | None  # its HNS endpoint's MacAddress; None when no endpoint was found

    @property
    def label(self) -> str:
        return f"{self.namespace}/{self.name}"


def traced_pods(extra: TracePlanExtra, macs: dict[str, str]) -> list[TracedPod]:
    roles = [("source", extra.source)] + [("destination", p) for p in extra.destination_pods]
    return [TracedPod(r, p.namespace, p.name, p.ip, p.node, macs.get(p.ip)) for r, p in roles]


async def ask_macs(
    extra: TracePlanExtra, call_all: Callable[..., Any], targets: Sequence[Any], timeout: float
) -> tuple[dict[str, str], list[str]]:
    """The traced pods' MACs (pod IP -> MAC) from the HNS endpoints of their nodes, and one line
    for each pod whose MAC is not known (no endpoint with its IP, or its node did not answer)."""
    pods = [extra.source, *extra.destination_pods]
    # (with --target a pod's node is not known: every target is asked)
    wanted = [t for t in targets if any(p.node in ("", t.name) for p in pods)]

    async def call(conn: Any) -> dict[str, str]:
        hns = await conn.stub.GetHns(
            pb.HnsRequest(type=pb.HNS_OBJECT_TYPE_ENDPOINTS, objects_only=True), timeout=timeout
        )
        found = {}
        for p in pods:
            endpoint = endpoint_of(hns, p.ip) if p.node in ("", conn.name) else None
            if endpoint is not None and endpoint.get("MacAddress"):
                found[p.ip] = str(endpoint["MacAddress"]).upper().replace(":", "-")
        return found

    macs: dict[str, str] = {}
    failed: dict[str, str] = {}
    for result in await call_all(wanted, call):
        if result.error is not None:
            failed[result.node] = result.error.message
        macs.update(result.value or {})
    notes = []
    for p in pods:
        if p.ip in macs:
            continue
        why = failed.get(p.node, "")
        where = f"on {p.node}" if p.node else "on the targets"
        notes.append(
            f"{p.namespace}/{p.name}: MAC not known ({p.node}: {why})"
            if why
            else f"{p.namespace}/{p.name}: no HNS endpoint with {p.ip} {where}: its MAC is not known"
        )
    return macs, notes


async def ask_ports(
    questions: Sequence[PortQuestion],
    call_all: Callable[..., Any],
    targets: Sequence[Any],
    timeout: float,
) -> dict[PortQuestion, tuple[pb.VfpRulesResponse | None, dict[str, Any] | None, NodeFailure | None]]:
    """Each question's VFP rules and HNS endpoint, from its node (one connection per node)."""
    by_node: dict[str, list[PortQuestion]] = {}
    for q in questions:
        by_node.setdefault(q.node, []).append(q)
    wanted = [t for t in targets if t.name in by_node]

    async def call(conn: Any) -> list[tuple[PortQuestion, pb.VfpRulesResponse, dict[str, Any] | None]]:
        hns = await conn.stub.GetHns(
            pb.HnsRequest(type=pb.HNS_OBJECT_TYPE_ENDPOINTS, objects_only=True), timeout=timeout
        )
        answers = []
        for q in by_node[conn.name]:
            ref = pb.PodRef(namespace=q.namespace, name=q.name, ip=q.ip)
            rules = await conn.stub.GetVfpRules(pb.VfpRulesRequest(pod=ref), timeout=timeout)
            answers.append((q, rules, endpoint_of(hns, q.ip)))
        return answers

    found: dict[
        PortQuestion, tuple[pb.VfpRulesResponse | None, dict[str, Any] | None, NodeFailure | None]
    ] = {}
    for result in await call_all(wanted, call):
        if result.error is not None:
            for q in by_node.get(result.node, []):
                found[q] = (None, None, result.error)
            continue
        for q, rules, endpoint in result.value or []:
            found[q] = (rules, endpoint, None)
    return found


def explain(
    flows: Sequence[Flow],
    extra: TracePlanExtra,
    answers: dict[PortQuestion, tuple[pb.VfpRulesResponse | None, dict[str, Any] | None, NodeFailure | None]],
    network_policies: Callable[[str, str], PolicyLookup],
) -> dict[int, Explanation]:
    """The explanation of each dropped flow (by its index)."""
    out: dict[int, Explanation] = {}
    for index, flow in enumerate(flows):
        refusal = flow.verdict.refusal
        if refusal is not None and refusal.unreachable_port is not None:  # what the ICMP message names
            where = address_of(refusal.src_ip, refusal.unreachable_port)
            out[index] = Explanation(lines=[explain_refused(where, refusal.icmp.split()[0].upper())])
        elif flow.verdict.status == REFUSED:
            out[index] = Explanation(lines=[explain_refused(flow.backend, flow.protocol)])
        drop = flow.verdict.drop
        if drop is None:
            continue
        question = vfp_question(flow, extra)
        if question is None:
            line = explain_reason(drop, drop.node)
            out[index] = Explanation(lines=[line] if line else [])
            continue
        rules, endpoint, failure = answers.get(question, (None, None, None))
        policies = network_policies(question.namespace, question.name) if question.inbound else PolicyLookup()
        found = explain_vfp_drop(
            drop, rules, endpoint, inbound=question.inbound, network_policies=policies.names
        )
        if policies.note:
            found.network_policies_note = policies.note
            found.lines.append(policies.note)
        if failure is not None:
            found.lines.append(f"{failure.node}: {failure.message}")
        out[index] = found
    return out


def plan_trace(settings: Any, source: str, destination: Destination) -> tuple[Any, TracePlanExtra]:
    """The capture plan (the nodes of the source and destination pods) and the trace's subject."""
    from winspect.client.targets import plan_pods

    allow_ip = bool(settings.targets)
    (source_spec,) = parse_pods([source], "FROM", allow_ip=allow_ip)
    if source_spec.workload:
        raise UsageError(f"FROM must be one pod, not {source_spec}")
    specs = [source_spec] + ([destination.pod] if destination.pod is not None else [])
    plan = plan_pods(settings, specs, False)
    source_pod, *others = plan.pods
    extra = TracePlanExtra(source=source_pod, destination_pods=others, address=destination.ip)
    service = destination.pod if destination.is_service else None
    if service is not None and not settings.targets:
        from winspect.client.cluster_once import with_cluster

        extra.vips, extra.service_ports = with_cluster(
            settings, lambda c: service_frontend(c, settings.namespace or c.namespace, service.name)
        )
    return plan, extra
