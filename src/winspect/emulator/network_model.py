"""The types of one emulated Windows node's network, and their state-file JSON.

`winspect.emulator.node_network` builds a `NodeNetwork`; `state` writes its
parts as the node's state files, which the emulated tools read. Each type's
`to_json()` fixes the file format (key order included), so the tools' output
depends only on the values. HNS objects stay JSON documents in HNS's own
schema: `hnsdiag` prints them as they are.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

HnsDocument = dict[str, Any]


@dataclass
class HnsObjects:
    """What HNS holds on the node, in `hnsdiag list` order."""

    networks: list[HnsDocument] = field(default_factory=list)
    endpoints: list[HnsDocument] = field(default_factory=list)
    loadbalancers: list[HnsDocument] = field(default_factory=list)
    namespaces: list[HnsDocument] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "networks": self.networks,
            "endpoints": self.endpoints,
            "loadbalancers": self.loadbalancers,
            "namespaces": self.namespaces,
        }


@dataclass
class PktmonComponent:
    """A component `pktmon list` shows (adapter, filter, switch or protocol)."""

    id: int
    name: str
    type: str
    role: str
    mac: str | None
    hidden: bool
    group: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AclRule:
    """A VFP ACL rule: allow or block, matching source IPs and optionally protocol and ports."""

    name: str
    priority: int
    type: str  # "allow" | "block"
    src_ips: list[str] | None = None
    protocol: int | None = None
    dst_ports: list[int] | None = None
    id: str | None = None  # set when the rule is placed on a port

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class NatRule:
    """A VFP SLB NAT rule that transposes traffic to the given destination prefixes."""

    id: str
    name: str
    priority: int
    type: str
    dst_ips: list[str]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class VfpGroup:
    """A VFP rule group of a layer, for one direction."""

    name: str
    priority: int
    direction: str  # "IN" | "OUT"
    type: str
    rules: list[AclRule] | list[NatRule]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "priority": self.priority,
            "direction": self.direction,
            "type": self.type,
            "rules": [r.to_json() for r in self.rules],
        }


@dataclass
class VfpPort:
    """A VFP switch port: the host vNIC, the external adapter or a pod's endpoint."""

    port_name: str
    friendly_name: str
    switch_name: str
    switch_friendly_name: str
    port_id: int
    port_type: str
    mac: str
    nic_name: str
    nic_friendly_name: str
    mtu: int
    role: str  # "host_vnic" | "external" | "pod"
    layers: dict[str, list[VfpGroup]]
    endpoint_id: str | None = None  # pod ports only
    pod: str | None = None  # namespace/name
    ip: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "port_name": self.port_name,
            "friendly_name": self.friendly_name,
            "switch_name": self.switch_name,
            "switch_friendly_name": self.switch_friendly_name,
            "port_id": self.port_id,
            "port_type": self.port_type,
            "mac": self.mac,
            "nic_name": self.nic_name,
            "nic_friendly_name": self.nic_friendly_name,
            "mtu": self.mtu,
            "role": self.role,
        }
        if self.endpoint_id is not None:
            out.update(endpoint_id=self.endpoint_id, pod=self.pod, ip=self.ip)
        out["layers"] = {name: [g.to_json() for g in groups] for name, groups in self.layers.items()}
        return out


def _acl_json(rules: list[AclRule] | None) -> list[dict[str, Any]] | None:
    return None if rules is None else [r.to_json() for r in rules]


@dataclass
class TopologyNode:
    name: str
    ip: str
    nic_mac: str
    host_vnic_mac: str
    gateway_mac: str


@dataclass
class LocalPod:
    """A pod on this node, as the traffic generator sees it."""

    namespace: str
    name: str
    app: str
    ip: str
    mac: str
    component: int  # its pktmon vNIC component
    port: str  # its VFP port
    listen: list[int]
    acl_in: list[AclRule] | None
    listen_udp: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "acl_in": _acl_json(self.acl_in)}


@dataclass
class RemotePod:
    """A pod on another node that this node's pods talk to."""

    namespace: str
    name: str
    app: str
    ip: str
    mac: str
    node_ip: str
    listen: list[int]
    acl_in: list[AclRule] | None
    listen_udp: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "acl_in": _acl_json(self.acl_in)}


@dataclass
class ServiceTopology:
    namespace: str
    name: str
    vip: str
    ports: list[list[str | int]]  # [protocol, port, target port]
    backends: list[str | None]  # pod IPs

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Topology:
    """What the traffic generator needs to know about the node and its peers."""

    node: TopologyNode
    components: dict[str, int]  # pktmon component id by role
    ports: dict[str, str]  # VFP port name of "external" and "host"
    local_pods: list[LocalPod]
    remote_pods: list[RemotePod]
    services: list[ServiceTopology]
    dns_ip: str
    closed_host_udp_port: int
    closed_pod_tcp_port: int
    vxlan_vni: int | None = None  # overlay network: traffic between nodes is VXLAN with this VNI

    def to_json(self) -> dict[str, Any]:
        return {
            "vxlan_vni": self.vxlan_vni,
            "node": asdict(self.node),
            "components": self.components,
            "ports": self.ports,
            "local_pods": [p.to_json() for p in self.local_pods],
            "remote_pods": [p.to_json() for p in self.remote_pods],
            "services": [s.to_json() for s in self.services],
            "dns_ip": self.dns_ip,
            "closed_host_udp_port": self.closed_host_udp_port,
            "closed_pod_tcp_port": self.closed_pod_tcp_port,
        }


@dataclass
class NodeNetwork:
    """Everything one node's tools show, and the topology its traffic is generated from."""

    hns: HnsObjects
    components: list[PktmonComponent]
    vfp_ports: list[VfpPort]
    topology: Topology

    def components_json(self) -> list[dict[str, Any]]:
        return [c.to_json() for c in self.components]

    def vfp_ports_json(self) -> list[dict[str, Any]]:
        return [p.to_json() for p in self.vfp_ports]
