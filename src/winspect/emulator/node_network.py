"""One Windows node's network objects, derived from the cluster model.

`build_node_network` returns everything the node's tools show: HNS objects
(network, local and remote endpoints, v2 load balancers, namespaces), pktmon
components, VFP switch ports with their rules, and the topology the traffic
generator uses (types in `network_model`). All of it is deterministic for
(cluster seed, node name): the steps draw from one random generator in a
fixed order, so reordering them changes every node's identifiers.
"""

from __future__ import annotations

import ipaddress
import random
import uuid
from typing import Any

from winspect.emulator.model import (
    CLUSTER_DOMAIN,
    KUBE_DNS_IP,
    NETWORK_POLICY_NAME,
    POD_GATEWAY,
    POD_SUBNET,
    POLICY_ALLOWED_NAMESPACE,
    SERVICE_CIDR,
    Cluster,
    Node,
    Pod,
    Service,
)
from winspect.emulator.network_model import (
    AclRule,
    HnsDocument,
    HnsObjects,
    LocalPod,
    NatRule,
    NodeNetwork,
    PktmonComponent,
    RemotePod,
    ServiceTopology,
    Topology,
    TopologyNode,
    VfpGroup,
    VfpPort,
)

# Azure's virtual gateway answers ARP for every VNet address with this MAC.
AZURE_GATEWAY_MAC = "12-34-56-78-9A-BC"
NETWORK_NAME = "azure"
EXTERNAL_ADAPTER_NAME = "Ethernet 2"
HOST_VNIC_ALIAS = f"vEthernet ({EXTERNAL_ADAPTER_NAME})"
# A UDP port nothing on the host listens on (statsd style metrics are sent there).
CLOSED_HOST_UDP_PORT = 8125
# A TCP port no pod listens on (connections get a RST).
CLOSED_POD_TCP_PORT = 8080

PROTO_NUMBERS = {"TCP": 6, "UDP": 17, "ICMP": 1}

ACL_LAYER = "ACL_ENDPOINT_LAYER"
ACL_GROUP_IN = "ACL_ENDPOINT_GROUP_IPV4_IN"
ACL_GROUP_OUT = "ACL_ENDPOINT_GROUP_IPV4_OUT"


class _Rand:
    def __init__(self, seed: int, node_name: str) -> None:
        self.rng = random.Random(f"winspect-node:{seed}:{node_name}")  # noqa: S311 - simulation

    def guid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def hexid(self, n: int) -> str:
        return "".join(self.rng.choice("0123456789abcdef") for _ in range(n))


def upper_dashed_mac(mac: str) -> str:
    """`0e:2a:...` -> `0E-2A-...`, the form HNS prints (the model's MACs are well formed)."""
    return mac.replace(":", "-").upper()


def _mixed_case(mac: str) -> str:
    """HNS sometimes prints MACs in mixed case (`0E-2A-0a-2a-d5-dd` was seen)."""
    parts = mac.split("-")
    return "-".join(p.upper() if i < 2 else p.lower() for i, p in enumerate(parts))


def conjure_mac(ip: str) -> str:
    """The MAC kube-proxy gives remote endpoints: 02-11 followed by the IPv4 octets."""
    octets = ipaddress.IPv4Address(ip).packed
    return "02-11-" + "-".join(f"{b:02x}" for b in octets)


HNS_VERSION = 64424509440
SCHEMA_V2 = {"Major": 2, "Minor": 0}
_ENDPOINT_HEALTH_TIME = 133589220330000000
_NETWORK_HEALTH_TIME = 133589220300000000

# The host's pktmon components, in `pktmon list` order: (role, name, type, hidden, group).
_HOST_COMPONENTS = (
    ("nic", "Microsoft Hyper-V Network Adapter", "adapter", False, EXTERNAL_ADAPTER_NAME),
    ("wfp_lwf", "WFP Native MAC Layer LightWeight Filter", "filter", True, EXTERNAL_ADAPTER_NAME),
    ("vswitch", "Hyper-V Virtual Switch Extension Adapter", "vswitch", True, EXTERNAL_ADAPTER_NAME),
    ("vfp", "Microsoft Azure VFP Switch Extension", "filter", True, EXTERNAL_ADAPTER_NAME),
    ("host_vnic", "Hyper-V Virtual Ethernet Adapter", "adapter", False, HOST_VNIC_ALIAS),
    ("tcpip", "TCPIP", "protocol", True, HOST_VNIC_ALIAS),
)
# The roles in the order their ids are drawn (ascending).
_COMPONENT_ID_ORDER = ("tcpip", "nic", "wfp_lwf", "vswitch", "vfp", "host_vnic")


def _health(update_time: int) -> dict[str, int]:
    return {"LastErrorCode": 0, "LastUpdateTime": update_time}


NETWORK_TYPES = {"l2bridge": "L2Bridge", "overlay": "Overlay"}
VXLAN_VNI = 4096  # the VNI Flannel's and Calico's VXLAN use by default


def build_node_network(cluster: Cluster, node_name: str, network: str = "l2bridge") -> NodeNetwork:
    """`network`: `l2bridge` (Azure CNI) or `overlay` (VXLAN between the nodes)."""
    node = cluster.node(node_name)
    if not node.is_windows:
        raise ValueError(f"node {node_name} runs {node.os}; only Windows nodes have HNS, pktmon and VFP")
    if network not in NETWORK_TYPES:
        raise ValueError(f"unknown network {network!r}: one of {', '.join(NETWORK_TYPES)}")
    return _NodeNetworkBuilder(cluster, node, NETWORK_TYPES[network]).build()


class _NodeNetworkBuilder:
    """Builds one node's network in named steps that share the node's random generator."""

    def __init__(self, cluster: Cluster, node: Node, network_type: str = "L2Bridge") -> None:
        self.cluster = cluster
        self.node = node
        self.network_type = network_type
        self.r = _Rand(cluster.seed, node.name)
        self.local_pods = [
            p for p in cluster.pods_on(node.name) if p.phase == "Running" and not p.host_network and p.ip
        ]
        self.network_id = self.r.guid()
        self.switch_id = self.r.guid().upper()
        self.source_vip = str(ipaddress.ip_network(node.pod_cidr).network_address + 2)
        self.dns_suffixes = {
            ns: f"{ns}.svc.{CLUSTER_DOMAIN},svc.{CLUSTER_DOMAIN},{CLUSTER_DOMAIN}"
            for ns in {p.namespace for p in self.local_pods}
        }
        self.web_ips = sorted(
            (
                p.ip
                for p in cluster.pods
                if p.namespace == POLICY_ALLOWED_NAMESPACE and p.ip and not p.host_network
            ),
            key=lambda a: ipaddress.ip_address(a),
        )
        self.hns = HnsObjects()
        self.components: list[PktmonComponent] = []
        self.component_ids: dict[str, int] = {}
        self.next_component_id = 0
        self.vfp_ports: list[VfpPort] = []
        self.endpoint_by_ip: dict[str, str] = {}
        self.local_topology: list[LocalPod] = []

    def build(self) -> NodeNetwork:
        self._host_components()
        host_port, ext_port, host_nic_guid, ext_nic_guid = self._host_ports()
        self.hns.namespaces.append(
            {
                "ID": self.r.guid(),
                "NamespaceId": 1,
                "Type": "HostDefault",
                "Resources": [],
                "SchemaVersion": SCHEMA_V2,
            }
        )
        for k, pod in enumerate(self.local_pods):
            self._local_pod(k, pod)
        services = [topo for svc in self.cluster.services if (topo := self._service(svc)) is not None]
        remote_pods = self._remote_pods()
        self.hns.networks.append(self._network(host_port, ext_port, host_nic_guid, ext_nic_guid))
        topology = Topology(
            node=TopologyNode(
                name=self.node.name,
                ip=self.node.internal_ip,
                nic_mac=self.node.mac_address,
                host_vnic_mac=self.node.mac_address,
                gateway_mac=AZURE_GATEWAY_MAC,
            ),
            components=self.component_ids,
            ports={"external": ext_port, "host": host_port},
            local_pods=self.local_topology,
            remote_pods=remote_pods,
            services=services,
            dns_ip=KUBE_DNS_IP,
            closed_host_udp_port=CLOSED_HOST_UDP_PORT,
            closed_pod_tcp_port=CLOSED_POD_TCP_PORT,
            vxlan_vni=VXLAN_VNI if self.network_type == "Overlay" else None,
        )
        return NodeNetwork(
            hns=self.hns, components=self.components, vfp_ports=self.vfp_ports, topology=topology
        )

    # ------------------------------------------------------------ the host

    def _host_components(self) -> None:
        """The host's pktmon components, with ids drawn from 3-39; pod vNICs follow from 60-109."""
        fixed = sorted(self.r.rng.sample(range(3, 40), len(_COMPONENT_ID_ORDER)))
        self.component_ids = dict(zip(_COMPONENT_ID_ORDER, fixed, strict=True))
        for role, name, kind, hidden, group in _HOST_COMPONENTS:
            mac = self.node.mac_address if kind == "adapter" else None
            self.components.append(
                PktmonComponent(
                    id=self.component_ids[role],
                    name=name,
                    type=kind,
                    role=role,
                    mac=mac,
                    hidden=hidden,
                    group=group,
                )
            )
        self.next_component_id = self.r.rng.randrange(60, 110)

    def _host_ports(self) -> tuple[str, str, str, str]:
        """The VFP ports of the host vNIC and the external adapter."""
        host_port = self.r.guid().upper()
        ext_port = self.r.guid().upper()
        host_nic_guid = self.r.guid().upper()
        ext_nic_guid = self.r.guid().upper()
        host_short = host_nic_guid[:8].lower()
        self.vfp_ports.append(
            VfpPort(
                port_name=host_port,
                friendly_name=f"Container NIC {host_short}",
                switch_name=self.switch_id,
                switch_friendly_name=NETWORK_NAME,
                port_id=1,
                port_type="Internal",
                mac=self.node.mac_address,
                nic_name=f"{host_nic_guid}--0",
                nic_friendly_name=f"Container NIC {host_short}",
                mtu=1500,
                role="host_vnic",
                layers=_default_layers(self.r, self.node, open_in=True),
            )
        )
        self.vfp_ports.append(
            VfpPort(
                port_name=ext_port,
                friendly_name="ExternalPort",
                switch_name=self.switch_id,
                switch_friendly_name=NETWORK_NAME,
                port_id=2,
                port_type="External",
                mac=self.node.mac_address,
                nic_name=f"{ext_nic_guid}--0",
                nic_friendly_name=EXTERNAL_ADAPTER_NAME,
                mtu=1500,
                role="external",
                layers={},
            )
        )
        return host_port, ext_port, host_nic_guid, ext_nic_guid

    # ------------------------------------------------------------ pods on this node

    def _local_pod(self, k: int, pod: Pod) -> None:
        """Pod `k` on this node: its HNS endpoint and namespace, VFP port, pktmon vNIC and topology."""
        assert pod.ip is not None and pod.mac is not None
        ep_id = self.r.guid()
        port_guid = self.r.guid().upper()
        nic_guid = self.r.guid().upper()
        container_id = self.r.hexid(64)
        ns_id = self.r.guid()
        mac = upper_dashed_mac(pod.mac)
        shown_mac = _mixed_case(mac) if k % 2 == 1 else mac
        self.hns.endpoints.append(
            self._local_endpoint(k, pod, ep_id, port_guid, nic_guid, container_id, ns_id, shown_mac)
        )
        self.hns.namespaces.append(
            {
                "ID": ns_id,
                "NamespaceId": 2 + k,
                "Type": "Host",
                "Resources": [
                    {"Type": "Container", "Data": {"ID": container_id}},
                    {"Type": "Endpoint", "Data": {"ID": ep_id}},
                ],
                "SchemaVersion": SCHEMA_V2,
            }
        )
        self.endpoint_by_ip[pod.ip] = ep_id

        acl_in = _policy_rules(self.node, self.web_ips) if pod.network_policy_deny else None
        self.vfp_ports.append(
            VfpPort(
                port_name=port_guid,
                friendly_name=ep_id,
                switch_name=self.switch_id,
                switch_friendly_name=NETWORK_NAME,
                port_id=len(self.vfp_ports) + 1,
                port_type="Synthetic",
                mac=mac,
                nic_name=f"{nic_guid}--{container_id[:8]}",
                nic_friendly_name=f"{container_id[:12]}_{NETWORK_NAME}",
                mtu=1500,
                role="pod",
                endpoint_id=ep_id,
                pod=f"{pod.namespace}/{pod.name}",
                ip=pod.ip,
                layers=_default_layers(self.r, self.node, open_in=not pod.network_policy_deny, acl_in=acl_in),
            )
        )
        if acl_in:  # HNS holds the policy VFP's rules were programmed from (same ids)
            endpoint = next(e for e in self.hns.endpoints if e["ID"] == ep_id)
            endpoint["Policies"] += [hns_acl_policy(rule) for rule in acl_in]
        component_id = self.next_component_id
        self.next_component_id += self.r.rng.randrange(1, 6)
        self.components.append(
            PktmonComponent(
                id=component_id,
                name=self.r.guid(),
                type="adapter",
                role="pod_vnic",
                mac=mac,
                hidden=False,
                group=f"{HOST_VNIC_ALIAS} {k + 2}",
            )
        )
        self.local_topology.append(
            LocalPod(
                namespace=pod.namespace,
                name=pod.name,
                app=pod.app,
                ip=pod.ip,
                mac=mac,
                component=component_id,
                port=port_guid,
                listen=[pod.container_port] if pod.container_port else [],
                listen_udp=[pod.udp_port] if pod.udp_port else [],
                acl_in=acl_in,
            )
        )

    def _local_endpoint(
        self,
        k: int,
        pod: Pod,
        ep_id: str,
        port_guid: str,
        nic_guid: str,
        container_id: str,
        ns_id: str,
        shown_mac: str,
    ) -> HnsDocument:
        """The HNS endpoint of local pod `k`."""
        health = _health(_ENDPOINT_HEALTH_TIME + k)
        port_alloc = {
            "AdditionalParams": {},
            "AllocationOrder": 3,
            "CA": pod.ip,
            "EndpointNicGuid": nic_guid,
            "EndpointPortGuid": port_guid,
            "Flags": 0,
            "Health": dict(health),
            "ID": self.r.guid().upper(),
            "IsPolicy": False,
            "MacAddress": shown_mac,
            "State": 3,
            "SwitchId": self.switch_id,
            "Tag": "Endpoint Port",
            "Version": HNS_VERSION,
        }
        policy_alloc = {
            "AdditionalParams": {},
            "AllocationOrder": 1,
            "Health": dict(health),
            "ID": self.r.guid().upper(),
            "IsPolicy": True,
            "State": 3,
            "Tag": "Endpoint Policy",
            "Version": HNS_VERSION,
        }
        # The port allocator is not always the first one: select it by Tag.
        allocators = [policy_alloc, port_alloc] if (pod.network_policy_deny or k % 2 == 0) else [port_alloc]
        return {
            "ActivityId": self.r.guid().upper(),
            "AdditionalParams": {},
            "CreateProcessId": 3000 + self.r.rng.randrange(4000),
            "DNSServerList": KUBE_DNS_IP,
            "DNSSuffix": self.dns_suffixes[pod.namespace],
            "GatewayAddress": POD_GATEWAY,
            "Health": dict(health),
            "ID": ep_id,
            "IPAddress": pod.ip,
            "IsRemoteEndpoint": False,
            "MacAddress": shown_mac,
            "Name": f"{container_id[:12]}_{NETWORK_NAME}",
            "Namespace": {"ID": ns_id, "IsDefault": False},
            "Policies": [
                {"ExceptionList": [POD_SUBNET, SERVICE_CIDR], "Type": "OutBoundNAT"},
                {"DestinationPrefix": SERVICE_CIDR, "NeedEncap": True, "Type": "ROUTE"},
            ],
            "PrefixLength": ipaddress.ip_network(POD_SUBNET).prefixlen,
            "Resources": {
                "AdditionalParams": {},
                "AllocationOrder": 2,
                "Allocators": allocators,
                "CompartmentOperationTime": 0,
                "Flags": 0,
                "Health": dict(health),
                "ID": self.r.guid().upper(),
                "PortOperationTime": 0,
                "State": 1,
                "SwitchOperationTime": 0,
                "VfpOperationTime": 0,
                "parentId": self.r.guid().upper(),
            },
            "SharedContainers": [container_id],
            "State": 3,
            "Type": self.network_type,
            "Version": HNS_VERSION,
            "VirtualNetwork": self.network_id,
            "VirtualNetworkName": NETWORK_NAME,
        }

    # ------------------------------------------------------------ services and other nodes' pods

    def _service(self, svc: Service) -> ServiceTopology | None:
        """A service's load balancers (one per port), with remote endpoints for backends elsewhere."""
        backends = self.cluster.service_pods(svc)
        if not backends:
            return None
        backend_ids: list[str] = []
        for pod in backends:
            assert pod.ip is not None
            if pod.ip not in self.endpoint_by_ip:
                ep_id = self.r.guid()
                self.hns.endpoints.append(self._remote_endpoint(pod, ep_id))
                self.endpoint_by_ip[pod.ip] = ep_id
            backend_ids.append(self.endpoint_by_ip[pod.ip])
        for _name, proto, port, target in svc.ports:
            self.hns.loadbalancers.append(
                {
                    "ID": self.r.guid(),
                    "HostComputeEndpoints": list(backend_ids),
                    "SourceVIP": self.source_vip,
                    "FrontendVIPs": [svc.cluster_ip],
                    "PortMappings": [
                        {"Protocol": PROTO_NUMBERS[proto], "InternalPort": target, "ExternalPort": port}
                    ],
                    "SchemaVersion": SCHEMA_V2,
                }
            )
        return ServiceTopology(
            namespace=svc.namespace,
            name=svc.name,
            vip=svc.cluster_ip,
            ports=[[proto, port, target] for _n, proto, port, target in svc.ports],
            backends=[p.ip for p in backends],
        )

    def _remote_endpoint(self, pod: Pod, ep_id: str) -> HnsDocument:
        assert pod.ip is not None
        owner = self.cluster.node(pod.node_name) if pod.node_name else None
        return {
            "ActivityId": self.r.guid().upper(),
            "AdditionalParams": {},
            "Health": _health(_ENDPOINT_HEALTH_TIME),
            "ID": ep_id,
            "IPAddress": pod.ip,
            "IsRemoteEndpoint": True,
            "MacAddress": conjure_mac(pod.ip),
            "Name": f"remote_{pod.ip}",
            "Policies": [{"PA": owner.internal_ip if owner else "", "Type": "PA"}],
            "PrefixLength": ipaddress.ip_network(POD_SUBNET).prefixlen,
            "SharedContainers": [],
            "State": 1,
            "Type": self.network_type,
            "Version": HNS_VERSION,
            "VirtualNetwork": self.network_id,
            "VirtualNetworkName": NETWORK_NAME,
        }

    def _remote_pods(self) -> list[RemotePod]:
        """Running pods on other nodes, by IP."""
        remote: dict[str, RemotePod] = {}
        for pod in self.cluster.pods:
            if (
                pod.node_name in (None, self.node.name)
                or pod.host_network
                or not pod.ip
                or pod.phase != "Running"
            ):
                continue
            owner = self.cluster.node(pod.node_name) if pod.node_name else None
            remote[pod.ip] = RemotePod(
                namespace=pod.namespace,
                name=pod.name,
                app=pod.app,
                ip=pod.ip,
                mac=upper_dashed_mac(pod.mac) if pod.mac else conjure_mac(pod.ip).upper(),
                node_ip=owner.internal_ip if owner else "",
                listen=[pod.container_port] if pod.container_port else [],
                listen_udp=[pod.udp_port] if pod.udp_port else [],
                acl_in=_policy_rules(owner, self.web_ips) if (owner and pod.network_policy_deny) else None,
            )
        return sorted(remote.values(), key=lambda p: ipaddress.ip_address(p.ip))

    # ------------------------------------------------------------ the HNS network

    def _network(self, host_port: str, ext_port: str, host_nic_guid: str, ext_nic_guid: str) -> HnsDocument:
        """The node's l2bridge HNS network (the one `hnsdiag list networks` shows)."""
        return {
            "ActivityId": self.r.guid().upper(),
            "AdditionalParams": {},
            "CurrentEndpointCount": len(self.local_pods),
            "DNSServerList": "168.63.129.16",
            "Extensions": [
                {
                    "Id": "E7C3B2F0-F3C5-48DF-AF2B-10FED6D72E7A",
                    "IsEnabled": False,
                    "Name": "Microsoft Windows Filtering Platform",
                },
                {
                    "Id": "E9B59CFA-2BE1-4B21-828F-B6FBDBDDC017",
                    "IsEnabled": True,
                    "Name": "Microsoft Azure VFP Switch Extension",
                },
                {
                    "Id": "EA24CD6C-D17A-4348-9190-09F0D5BE83DD",
                    "IsEnabled": True,
                    "Name": "Microsoft NDIS Capture",
                },
            ],
            "Flags": 0,
            "Health": _health(_NETWORK_HEALTH_TIME),
            "ID": self.network_id,
            "IPv6": False,
            "LayeredOn": self.r.guid(),
            "Layer": self._network_layer(host_port, ext_port, host_nic_guid, ext_nic_guid),
            "MacPools": [{"EndMacAddress": "00-15-5D-FF-FF-FF", "StartMacAddress": "00-15-5D-00-00-00"}],
            "ManagementIP": self.node.internal_ip,
            "Name": NETWORK_NAME,
            "NetworkAdapterName": EXTERNAL_ADAPTER_NAME,
            "Policies": [],
            "State": 1,
            "Subnets": [
                {
                    "AdditionalParams": {},
                    "AddressPrefix": POD_SUBNET,
                    "GatewayAddress": POD_GATEWAY,
                    "Health": _health(_NETWORK_HEALTH_TIME),
                    "ID": self.r.guid().upper(),
                    "ObjectType": 5,
                    "Policies": [],
                    "State": 0,
                }
            ],
            "SwitchGuid": self.switch_id,
            "TotalEndpoints": len(self.local_pods),
            "Type": self.network_type,
            "Version": HNS_VERSION,
        }

    def _network_layer(
        self, host_port: str, ext_port: str, host_nic_guid: str, ext_nic_guid: str
    ) -> HnsDocument:
        """The network's layer: its external adapter and host vNIC allocators."""
        return {
            "ID": self.r.guid().upper(),
            "Resources": {
                "AdditionalParams": {},
                "AllocationOrder": 2,
                "Allocators": [
                    {
                        "AdapterNetCfgInstanceId": "{" + self.r.guid().upper() + "}",
                        "AdditionalParams": {},
                        "AllocationOrder": 0,
                        "ExternalNicGuid": ext_nic_guid,
                        "ExternalNicPortGuid": ext_port,
                        "Flags": 0,
                        "ID": self.r.guid().upper(),
                        "IsPolicy": False,
                        "NetworkAdapterName": EXTERNAL_ADAPTER_NAME,
                        "State": 3,
                        "Tag": "External Adapter Info",
                        "Version": HNS_VERSION,
                    },
                    {
                        "AdditionalParams": {},
                        "AllocationOrder": 1,
                        "EndpointNicGuid": host_nic_guid,
                        "EndpointPortGuid": host_port,
                        "Flags": 0,
                        "ID": self.r.guid().upper(),
                        "IsPolicy": False,
                        "MacAddress": self.node.mac_address,
                        "ManagementIP": self.node.internal_ip,
                        "State": 3,
                        "SwitchId": self.switch_id,
                        "Tag": "Host Vnic",
                        "Version": HNS_VERSION,
                    },
                ],
                "ID": self.r.guid().upper(),
                "State": 1,
            },
        }


def hns_acl_policy(rule: AclRule) -> dict[str, Any]:
    """The HNS endpoint policy (v1 `ACL`) of an inbound VFP ACL rule; its Id is the rule's id."""
    policy: dict[str, Any] = {
        "Action": "Allow" if rule.type == "allow" else "Block",
        "Direction": "In",
        "Id": rule.id,
        "Priority": rule.priority,
        "RuleType": "Switch",
        "Type": "ACL",
    }
    if rule.src_ips:
        policy["RemoteAddresses"] = ",".join(rule.src_ips)
    if rule.protocol is not None:
        policy["Protocols"] = str(rule.protocol)
    if rule.dst_ports:
        policy["LocalPorts"] = ",".join(str(p) for p in rule.dst_ports)
    return policy


def _policy_rules(node: Node, allowed_ips: list[str]) -> list[AclRule]:
    """Inbound ACL of a pod behind the network policy: host and namespace `web` only."""
    return [
        AclRule(name="allow-host-to-endpoint", priority=900, type="allow", src_ips=[node.internal_ip]),
        AclRule(
            name=f"allow-ingress-from-ns-{POLICY_ALLOWED_NAMESPACE}",
            priority=1000,
            type="allow",
            src_ips=allowed_ips,
            protocol=6,
            dst_ports=[80],
        ),
        AclRule(name=NETWORK_POLICY_NAME, priority=65000, type="block"),
    ]


def _default_layers(
    r: _Rand, node: Node, *, open_in: bool, acl_in: list[AclRule] | None = None
) -> dict[str, list[VfpGroup]]:
    """VFP layers of a port: ACL groups in and out, plus the SLB NAT layer."""
    if acl_in is None:
        acl_in = [
            AclRule(name="allow-host-to-endpoint", priority=900, type="allow", src_ips=[node.internal_ip]),
            AclRule(name="allow-all-in", priority=65000, type="allow" if open_in else "block"),
        ]
    acl_out = [AclRule(name="allow-all-out", priority=65000, type="allow")]
    for rule in acl_in + acl_out:
        rule.id = r.guid().upper()
    nat_out = [
        NatRule(
            id=r.guid().upper(),
            name="LB_DSR_IPv4_OUT",
            priority=100,
            type="transposition",
            dst_ips=[SERVICE_CIDR],
        )
    ]
    return {
        ACL_LAYER: [
            VfpGroup(name=ACL_GROUP_IN, priority=1, direction="IN", type="IPv4", rules=acl_in),
            VfpGroup(name=ACL_GROUP_OUT, priority=1, direction="OUT", type="IPv4", rules=acl_out),
        ],
        "SLB_NAT_LAYER": [
            VfpGroup(name="SLB_GROUP_NAT_IPv4_IN", priority=100, direction="IN", type="IPv4", rules=[]),
            VfpGroup(
                name="SLB_GROUP_NAT_IPv4_OUT", priority=100, direction="OUT", type="IPv4", rules=nat_out
            ),
        ],
    }
