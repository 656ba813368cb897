"""One Windows node's network objects, derived from the cluster model.

`build_node_network` returns everything the node's tools show: HNS objects
(network, local and remote endpoints, v2 load balancers, namespaces), pktmon
components, VFP switch ports with their rules, and the topology the traffic
generator uses. All of it is deterministic for (cluster seed, node name).
"""

from __future__ import annotations

import ipaddress
import random
import uuid
from typing import Any

from winspect.emulator.model import (
    CLUSTER_DOMAIN,
    KUBE_DNS_IP,
    POD_GATEWAY,
    POD_SUBNET,
    POLICY_ALLOWED_NAMESPACE,
    SERVICE_CIDR,
    Cluster,
    Node,
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


def build_node_network(cluster: Cluster, node_name: str) -> dict[str, Any]:
    node = cluster.node(node_name)
    if not node.is_windows:
        raise ValueError(f"node {node_name} runs {node.os}; only Windows nodes have HNS, pktmon and VFP")
    r = _Rand(cluster.seed, node.name)
    rng = r.rng

    local_pods = [
        p for p in cluster.pods_on(node.name) if p.phase == "Running" and not p.host_network and p.ip
    ]
    network_id = r.guid()
    switch_id = r.guid().upper()
    pod_net = ipaddress.ip_network(node.pod_cidr)
    source_vip = str(pod_net.network_address + 2)

    # ------------------------------------------------------------ pktmon components
    fixed = sorted(rng.sample(range(3, 40), 6))
    comp_ids = {
        "tcpip": fixed[0],
        "nic": fixed[1],
        "wfp_lwf": fixed[2],
        "vswitch": fixed[3],
        "vfp": fixed[4],
        "host_vnic": fixed[5],
    }
    components: list[dict[str, Any]] = [
        {
            "id": comp_ids["nic"],
            "name": "Microsoft Hyper-V Network Adapter",
            "type": "adapter",
            "role": "nic",
            "mac": node.mac_address,
            "hidden": False,
            "group": EXTERNAL_ADAPTER_NAME,
        },
        {
            "id": comp_ids["wfp_lwf"],
            "name": "WFP Native MAC Layer LightWeight Filter",
            "type": "filter",
            "role": "wfp_lwf",
            "mac": None,
            "hidden": True,
            "group": EXTERNAL_ADAPTER_NAME,
        },
        {
            "id": comp_ids["vswitch"],
            "name": "Hyper-V Virtual Switch Extension Adapter",
            "type": "vswitch",
            "role": "vswitch",
            "mac": None,
            "hidden": True,
            "group": EXTERNAL_ADAPTER_NAME,
        },
        {
            "id": comp_ids["vfp"],
            "name": "Microsoft Azure VFP Switch Extension",
            "type": "filter",
            "role": "vfp",
            "mac": None,
            "hidden": True,
            "group": EXTERNAL_ADAPTER_NAME,
        },
        {
            "id": comp_ids["host_vnic"],
            "name": "Hyper-V Virtual Ethernet Adapter",
            "type": "adapter",
            "role": "host_vnic",
            "mac": node.mac_address,
            "hidden": False,
            "group": HOST_VNIC_ALIAS,
        },
        {
            "id": comp_ids["tcpip"],
            "name": "TCPIP",
            "type": "protocol",
            "role": "tcpip",
            "mac": None,
            "hidden": True,
            "group": HOST_VNIC_ALIAS,
        },
    ]
    next_id = rng.randrange(60, 110)

    # ------------------------------------------------------------ VFP ports (host side)
    host_port = r.guid().upper()
    ext_port = r.guid().upper()
    host_nic_guid = r.guid().upper()
    ext_nic_guid = r.guid().upper()
    host_short = host_nic_guid[:8].lower()
    port_counter = 1
    vfp_ports: list[dict[str, Any]] = [
        {
            "port_name": host_port,
            "friendly_name": f"Container NIC {host_short}",
            "switch_name": switch_id,
            "switch_friendly_name": NETWORK_NAME,
            "port_id": 1,
            "port_type": "Internal",
            "mac": node.mac_address,
            "nic_name": f"{host_nic_guid}--0",
            "nic_friendly_name": f"Container NIC {host_short}",
            "mtu": 1500,
            "role": "host_vnic",
            "layers": _default_layers(r, node, open_in=True),
        },
        {
            "port_name": ext_port,
            "friendly_name": "ExternalPort",
            "switch_name": switch_id,
            "switch_friendly_name": NETWORK_NAME,
            "port_id": 2,
            "port_type": "External",
            "mac": node.mac_address,
            "nic_name": f"{ext_nic_guid}--0",
            "nic_friendly_name": EXTERNAL_ADAPTER_NAME,
            "mtu": 1500,
            "role": "external",
            "layers": {},
        },
    ]
    port_counter = 3

    # ------------------------------------------------------------ local endpoints
    dns_suffixes = {
        ns: f"{ns}.svc.{CLUSTER_DOMAIN},svc.{CLUSTER_DOMAIN},{CLUSTER_DOMAIN}"
        for ns in {p.namespace for p in local_pods}
    }
    web_ips = sorted(
        (
            p.ip
            for p in cluster.pods
            if p.namespace == POLICY_ALLOWED_NAMESPACE and p.ip and not p.host_network
        ),
        key=lambda a: ipaddress.ip_address(a),
    )
    endpoints: list[dict[str, Any]] = []
    namespaces: list[dict[str, Any]] = [
        {
            "ID": r.guid(),
            "NamespaceId": 1,
            "Type": "HostDefault",
            "Resources": [],
            "SchemaVersion": {"Major": 2, "Minor": 0},
        }
    ]
    endpoint_by_ip: dict[str, str] = {}
    local_topo: list[dict[str, Any]] = []
    for k, pod in enumerate(local_pods):
        assert pod.ip is not None and pod.mac is not None
        ep_id = r.guid()
        port_guid = r.guid().upper()
        nic_guid = r.guid().upper()
        container_id = r.hexid(64)
        ns_id = r.guid()
        mac = upper_dashed_mac(pod.mac)
        shown_mac = _mixed_case(mac) if k % 2 == 1 else mac
        port_alloc = {
            "AdditionalParams": {},
            "AllocationOrder": 3,
            "CA": pod.ip,
            "EndpointNicGuid": nic_guid,
            "EndpointPortGuid": port_guid,
            "Flags": 0,
            "Health": {"LastErrorCode": 0, "LastUpdateTime": 133589220330000000 + k},
            "ID": r.guid().upper(),
            "IsPolicy": False,
            "MacAddress": shown_mac,
            "State": 3,
            "SwitchId": switch_id,
            "Tag": "Endpoint Port",
            "Version": 64424509440,
        }
        policy_alloc = {
            "AdditionalParams": {},
            "AllocationOrder": 1,
            "Health": {"LastErrorCode": 0, "LastUpdateTime": 133589220330000000 + k},
            "ID": r.guid().upper(),
            "IsPolicy": True,
            "State": 3,
            "Tag": "Endpoint Policy",
            "Version": 64424509440,
        }
        # The port allocator is not always the first one: select it by Tag.
        allocators = [policy_alloc, port_alloc] if (pod.network_policy_deny or k % 2 == 0) else [port_alloc]
        endpoints.append(
            {
                "ActivityId": r.guid().upper(),
                "AdditionalParams": {},
                "CreateProcessId": 3000 + rng.randrange(4000),
                "DNSServerList": KUBE_DNS_IP,
                "DNSSuffix": dns_suffixes[pod.namespace],
                "GatewayAddress": POD_GATEWAY,
                "Health": {"LastErrorCode": 0, "LastUpdateTime": 133589220330000000 + k},
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
                    "Health": {"LastErrorCode": 0, "LastUpdateTime": 133589220330000000 + k},
                    "ID": r.guid().upper(),
                    "PortOperationTime": 0,
                    "State": 1,
                    "SwitchOperationTime": 0,
                    "VfpOperationTime": 0,
                    "parentId": r.guid().upper(),
                },
                "SharedContainers": [container_id],
                "State": 3,
                "Type": "L2Bridge",
                "Version": 64424509440,
                "VirtualNetwork": network_id,
                "VirtualNetworkName": NETWORK_NAME,
            }
        )
        namespaces.append(
            {
                "ID": ns_id,
                "NamespaceId": 2 + k,
                "Type": "Host",
                "Resources": [
                    {"Type": "Container", "Data": {"ID": container_id}},
                    {"Type": "Endpoint", "Data": {"ID": ep_id}},
                ],
                "SchemaVersion": {"Major": 2, "Minor": 0},
            }
        )
        endpoint_by_ip[pod.ip] = ep_id

        acl_in = _policy_rules(node, web_ips) if pod.network_policy_deny else None
        layers = _default_layers(r, node, open_in=not pod.network_policy_deny, acl_in=acl_in)
        vfp_ports.append(
            {
                "port_name": port_guid,
                "friendly_name": ep_id,
                "switch_name": switch_id,
                "switch_friendly_name": NETWORK_NAME,
                "port_id": port_counter,
                "port_type": "Synthetic",
                "mac": mac,
                "nic_name": f"{nic_guid}--{container_id[:8]}",
                "nic_friendly_name": f"{container_id[:12]}_{NETWORK_NAME}",
                "mtu": 1500,
                "role": "pod",
                "endpoint_id": ep_id,
                "pod": f"{pod.namespace}/{pod.name}",
                "ip": pod.ip,
                "layers": layers,
            }
        )
        port_counter += 1

        comp_id = next_id
        next_id += rng.randrange(1, 6)
        components.append(
            {
                "id": comp_id,
                "name": r.guid(),
                "type": "adapter",
                "role": "pod_vnic",
                "mac": mac,
                "hidden": False,
                "group": f"{HOST_VNIC_ALIAS} {k + 2}",
            }
        )
        local_topo.append(
            {
                "namespace": pod.namespace,
                "name": pod.name,
                "app": pod.app,
                "ip": pod.ip,
                "mac": mac,
                "component": comp_id,
                "port": port_guid,
                "listen": [pod.container_port] if pod.container_port else [],
                "acl_in": acl_in,
            }
        )

    # ------------------------------------------------------------ remote endpoints + load balancers
    loadbalancers: list[dict[str, Any]] = []
    services_topo: list[dict[str, Any]] = []
    remote_topo: dict[str, dict[str, Any]] = {}
    for svc in cluster.services:
        backends = cluster.service_pods(svc)
        if not backends:
            continue
        backend_ids: list[str] = []
        for pod in backends:
            assert pod.ip is not None
            if pod.ip not in endpoint_by_ip:
                ep_id = r.guid()
                owner = cluster.node(pod.node_name) if pod.node_name else None
                endpoints.append(
                    {
                        "ActivityId": r.guid().upper(),
                        "AdditionalParams": {},
                        "Health": {"LastErrorCode": 0, "LastUpdateTime": 133589220330000000},
                        "ID": ep_id,
                        "IPAddress": pod.ip,
                        "IsRemoteEndpoint": True,
                        "MacAddress": conjure_mac(pod.ip),
                        "Name": f"remote_{pod.ip}",
                        "Policies": [{"PA": owner.internal_ip if owner else "", "Type": "PA"}],
                        "PrefixLength": ipaddress.ip_network(POD_SUBNET).prefixlen,
                        "SharedContainers": [],
                        "State": 1,
                        "Type": "L2Bridge",
                        "Version": 64424509440,
                        "VirtualNetwork": network_id,
                        "VirtualNetworkName": NETWORK_NAME,
                    }
                )
                endpoint_by_ip[pod.ip] = ep_id
            backend_ids.append(endpoint_by_ip[pod.ip])
        for _name, proto, port, target in svc.ports:
            loadbalancers.append(
                {
                    "ID": r.guid(),
                    "HostComputeEndpoints": list(backend_ids),
                    "SourceVIP": source_vip,
                    "FrontendVIPs": [svc.cluster_ip],
                    "PortMappings": [
                        {"Protocol": PROTO_NUMBERS[proto], "InternalPort": target, "ExternalPort": port}
                    ],
                    "SchemaVersion": {"Major": 2, "Minor": 0},
                }
            )
        services_topo.append(
            {
                "namespace": svc.namespace,
                "name": svc.name,
                "vip": svc.cluster_ip,
                "ports": [[proto, port, target] for _n, proto, port, target in svc.ports],
                "backends": [p.ip for p in backends],
            }
        )

    for pod in cluster.pods:
        if pod.node_name in (None, node.name) or pod.host_network or not pod.ip or pod.phase != "Running":
            continue
        owner = cluster.node(pod.node_name) if pod.node_name else None
        remote_topo[pod.ip] = {
            "namespace": pod.namespace,
            "name": pod.name,
            "app": pod.app,
            "ip": pod.ip,
            "mac": upper_dashed_mac(pod.mac) if pod.mac else conjure_mac(pod.ip).upper(),
            "node_ip": owner.internal_ip if owner else "",
            "listen": [pod.container_port] if pod.container_port else [],
            "acl_in": _policy_rules(owner, web_ips) if (owner and pod.network_policy_deny) else None,
        }

    network = {
        "ActivityId": r.guid().upper(),
        "AdditionalParams": {},
        "CurrentEndpointCount": len(local_pods),
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
        "Health": {"LastErrorCode": 0, "LastUpdateTime": 133589220300000000},
        "ID": network_id,
        "IPv6": False,
        "LayeredOn": r.guid(),
        "Layer": {
            "ID": r.guid().upper(),
            "Resources": {
                "AdditionalParams": {},
                "AllocationOrder": 2,
                "Allocators": [
                    {
                        "AdapterNetCfgInstanceId": "{" + r.guid().upper() + "}",
                        "AdditionalParams": {},
                        "AllocationOrder": 0,
                        "ExternalNicGuid": ext_nic_guid,
                        "ExternalNicPortGuid": ext_port,
                        "Flags": 0,
                        "ID": r.guid().upper(),
                        "IsPolicy": False,
                        "NetworkAdapterName": EXTERNAL_ADAPTER_NAME,
                        "State": 3,
                        "Tag": "External Adapter Info",
                        "Version": 64424509440,
                    },
                    {
                        "AdditionalParams": {},
                        "AllocationOrder": 1,
                        "EndpointNicGuid": host_nic_guid,
                        "EndpointPortGuid": host_port,
                        "Flags": 0,
                        "ID": r.guid().upper(),
                        "IsPolicy": False,
                        "MacAddress": node.mac_address,
                        "ManagementIP": node.internal_ip,
                        "State": 3,
                        "SwitchId": switch_id,
                        "Tag": "Host Vnic",
                        "Version": 64424509440,
                    },
                ],
                "ID": r.guid().upper(),
                "State": 1,
            },
        },
        "MacPools": [{"EndMacAddress": "00-15-5D-FF-FF-FF", "StartMacAddress": "00-15-5D-00-00-00"}],
        "ManagementIP": node.internal_ip,
        "Name": NETWORK_NAME,
        "NetworkAdapterName": EXTERNAL_ADAPTER_NAME,
        "Policies": [],
        "State": 1,
        "Subnets": [
            {
                "AdditionalParams": {},
                "AddressPrefix": POD_SUBNET,
                "GatewayAddress": POD_GATEWAY,
                "Health": {"LastErrorCode": 0, "LastUpdateTime": 133589220300000000},
                "ID": r.guid().upper(),
                "ObjectType": 5,
                "Policies": [],
                "State": 0,
            }
        ],
        "SwitchGuid": switch_id,
        "TotalEndpoints": len(local_pods),
        "Type": "L2Bridge",
        "Version": 64424509440,
    }

    topology = {
        "node": {
            "name": node.name,
            "ip": node.internal_ip,
            "nic_mac": node.mac_address,
            "host_vnic_mac": node.mac_address,
            "gateway_mac": AZURE_GATEWAY_MAC,
        },
        "components": comp_ids,
        "ports": {"external": ext_port, "host": host_port},
        "local_pods": local_topo,
        "remote_pods": sorted(remote_topo.values(), key=lambda p: ipaddress.ip_address(p["ip"])),
        "services": services_topo,
        "dns_ip": KUBE_DNS_IP,
        "closed_host_udp_port": CLOSED_HOST_UDP_PORT,
        "closed_pod_tcp_port": CLOSED_POD_TCP_PORT,
    }
    return {
        "hns": {
            "networks": [network],
            "endpoints": endpoints,
            "loadbalancers": loadbalancers,
            "namespaces": namespaces,
        },
        "components": components,
        "vfp_ports": vfp_ports,
        "topology": topology,
    }


def _policy_rules(node: Node, allowed_ips: list[str]) -> list[dict[str, Any]]:
    """Inbound ACL of a pod behind the network policy: host and namespace `web` only."""
    return [
        {"name": "allow-host-to-endpoint", "priority": 900, "type": "allow", "src_ips": [node.internal_ip]},
        {
            "name": f"allow-ingress-from-ns-{POLICY_ALLOWED_NAMESPACE}",
            "priority": 1000,
            "type": "allow",
            "src_ips": allowed_ips,
            "protocol": 6,
            "dst_ports": [80],
        },
        {"name": "default-deny-ingress", "priority": 65000, "type": "block"},
    ]


def _default_layers(
    r: _Rand, node: Node, *, open_in: bool, acl_in: list[dict[str, Any]] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """VFP layers of a port: ACL groups in and out, plus the SLB NAT layer."""
    if acl_in is None:
        acl_in = [
            {
                "name": "allow-host-to-endpoint",
                "priority": 900,
                "type": "allow",
                "src_ips": [node.internal_ip],
            },
            {"name": "allow-all-in", "priority": 65000, "type": "allow" if open_in else "block"},
        ]
    acl_out = [{"name": "allow-all-out", "priority": 65000, "type": "allow"}]
    for rule in acl_in + acl_out:
        rule["id"] = r.guid().upper()
    return {
        ACL_LAYER: [
            {"name": ACL_GROUP_IN, "priority": 1, "direction": "IN", "type": "IPv4", "rules": acl_in},
            {"name": ACL_GROUP_OUT, "priority": 1, "direction": "OUT", "type": "IPv4", "rules": acl_out},
        ],
        "SLB_NAT_LAYER": [
            {
                "name": "SLB_GROUP_NAT_IPv4_IN",
                "priority": 100,
                "direction": "IN",
                "type": "IPv4",
                "rules": [],
            },
            {
                "name": "SLB_GROUP_NAT_IPv4_OUT",
                "priority": 100,
                "direction": "OUT",
                "type": "IPv4",
                "rules": [
                    {
                        "id": r.guid().upper(),
                        "name": "LB_DSR_IPv4_OUT",
                        "priority": 100,
                        "type": "transposition",
                        "dst_ips": [SERVICE_CIDR],
                    }
                ],
            },
        ],
    }
