"""The emulated cluster: nodes, pods and services of an AKS-like cluster.

Plain dataclasses, deterministic for a given seed, JSON-serialisable through
`to_dict()` / `from_dict()`. The sandbox serves them as Kubernetes objects;
`winspect.emulator.state` derives each Windows node's network state from them.
"""

from __future__ import annotations

import ipaddress
import random
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

WINDOWS_2022 = {
    "windows_build": "10.0.20348",
    "os_image": "Windows Server 2022 Datacenter",
    "kernel_version": "10.0.20348.1668",
    "os_sku": "Windows2022",
    "container_runtime_version": "containerd://1.6.14+azure",
    "ltsc": "ltsc2022",
}
WINDOWS_2019 = {
    "windows_build": "10.0.17763",
    "os_image": "Windows Server 2019 Datacenter",
    "kernel_version": "10.0.17763.4252",
    "os_sku": "Windows2019",
    "container_runtime_version": "containerd://1.6.21+azure",
    "ltsc": "ltsc2019",
}
LINUX_UBUNTU = {
    "os_image": "Ubuntu 22.04.4 LTS",
    "kernel_version": "5.15.0-1064-azure",
    "os_sku": "Ubuntu",
    "container_runtime_version": "containerd://1.7.15-1",
}
KUBELET_VERSION = "v1.28.5"
POD_SUBNET = "10.224.0.0/16"
POD_GATEWAY = "10.224.0.1"
SERVICE_CIDR = "10.0.0.0/16"
KUBE_DNS_IP = "10.0.0.10"
KUBERNETES_SERVICE_IP = "10.0.0.1"
CLUSTER_DOMAIN = "cluster.local"
# The namespace whose pods the network policy of `Pod.network_policy_deny` admits.
POLICY_ALLOWED_NAMESPACE = "web"
# The network policy's name (its VFP block rule's too) and the labels that select its pod.
NETWORK_POLICY_NAME = "default-deny-ingress"
NETWORK_POLICY_POD_LABELS = {"access": "restricted"}

_SUFFIX_CHARS = "bcdfghjklmnpqrstvwxz2456789"


@dataclass
class Node:
    name: str
    os: str  # "windows" | "linux"
    internal_ip: str
    hostname: str
    pod_cidr: str
    windows_build: str | None
    os_image: str
    kernel_version: str
    os_sku: str
    agentpool: str
    container_runtime_version: str
    kubelet_version: str = KUBELET_VERSION
    architecture: str = "amd64"
    mac_address: str = ""  # physical NIC, dash separated upper case
    uid: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[dict[str, str]] = field(default_factory=list)

    @property
    def is_windows(self) -> bool:
        return self.os == "windows"


@dataclass
class Pod:
    namespace: str
    name: str
    node_name: str | None  # None while Pending
    ip: str | None  # None while Pending
    mac: str | None  # Windows pods only: 00-15-5D-xx-xx-xx
    labels: dict[str, str]
    app: str
    image: str
    phase: str  # "Running" | "Pending"
    container_port: int | None
    network_policy_deny: bool = False
    host_network: bool = False
    container_name: str = ""
    uid: str = ""
    owner_kind: str = ""  # ReplicaSet | DaemonSet
    owner_name: str = ""
    protocol: str = "TCP"
    udp_port: int | None = None  # a port it also listens on over UDP (CoreDNS: 53)


@dataclass
class Service:
    namespace: str
    name: str
    cluster_ip: str
    ports: list[tuple[str, str, int, int]]  # (name, protocol, port, target_port)
    selector: dict[str, str]
    uid: str = ""


@dataclass
class Cluster:
    nodes: list[Node]
    pods: list[Pod]
    services: list[Service]
    seed: int

    # ------------------------------------------------------------ queries
    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(f"no node named {name!r}")

    def windows_nodes(self) -> list[Node]:
        return [n for n in self.nodes if n.is_windows]

    def linux_nodes(self) -> list[Node]:
        return [n for n in self.nodes if not n.is_windows]

    def pods_on(self, node_name: str) -> list[Pod]:
        return [p for p in self.pods if p.node_name == node_name]

    def service_pods(self, service: Service) -> list[Pod]:
        """Running pods with an IP that the service's selector selects."""
        if not service.selector:
            return []
        return [
            p
            for p in self.pods
            if p.namespace == service.namespace
            and p.phase == "Running"
            and p.ip is not None
            and all(p.labels.get(k) == v for k, v in service.selector.items())
        ]

    # ------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "nodes": [asdict(n) for n in self.nodes],
            "pods": [asdict(p) for p in self.pods],
            "services": [{**asdict(s), "ports": [list(p) for p in s.ports]} for s in self.services],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Cluster:
        services = [
            Service(**{**s, "ports": [(str(a), str(b), int(c), int(d)) for a, b, c, d in s["ports"]]})
            for s in data["services"]
        ]
        return cls(
            nodes=[Node(**n) for n in data["nodes"]],
            pods=[Pod(**p) for p in data["pods"]],
            services=services,
            seed=int(data["seed"]),
        )


# ---------------------------------------------------------------- building


class _Ids:
    """Deterministic random values derived from the seed."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(f"winspect-cluster:{seed}")  # noqa: S311 - simulation, not crypto

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def hash(self, length: int = 10) -> str:
        return "".join(self.rng.choice("0123456789abcdef") for _ in range(length))

    def suffix(self, length: int = 5) -> str:
        return "".join(self.rng.choice(_SUFFIX_CHARS) for _ in range(length))

    def mac(self, prefix: str) -> str:
        tail = [self.rng.randrange(256) for _ in range(3)]
        return prefix + "-" + "-".join(f"{b:02X}" for b in tail)


def _default_addresses(start: int, count: int) -> list[str]:
    return [f"127.0.0.{start + i}" for i in range(count)]


def build_cluster(
    windows_nodes: int = 3,
    linux_nodes: int = 1,
    seed: int = 0,
    windows_addresses: list[str] | None = None,
    linux_addresses: list[str] | None = None,
) -> Cluster:
    """An AKS-like cluster with Azure CNI (l2bridge) networking.

    Windows node i is `aksnpwin00000i` at `windows_addresses[i]` (default
    127.0.0.2, 127.0.0.3, ...), pod range 10.224.i.0/24; Linux nodes follow
    (default addresses continue after the Windows ones).
    """
    win_addrs, lin_addrs = _node_addresses(windows_nodes, linux_nodes, windows_addresses, linux_addresses)
    # Every value below comes from one generator: the order of the steps is part of the model.
    ids = _Ids(seed)
    nodes = [_windows_node(ids, i, win_addrs[i]) for i in range(windows_nodes)]
    nodes += [_linux_node(ids, j, lin_addrs[j], pod_range=windows_nodes + j) for j in range(linux_nodes)]
    pods = _build_pods(ids, nodes)
    services = _build_services(ids)
    return Cluster(nodes=nodes, pods=pods, services=services, seed=seed)


def _node_addresses(
    windows_nodes: int,
    linux_nodes: int,
    windows_addresses: list[str] | None,
    linux_addresses: list[str] | None,
) -> tuple[list[str], list[str]]:
    """The Windows and Linux nodes' addresses, checked (ValueError names what is wrong)."""
    if windows_nodes < 0 or linux_nodes < 0:
        raise ValueError("node counts must not be negative")
    if windows_nodes > 200 or linux_nodes > 50:
        raise ValueError("at most 200 Windows and 50 Linux nodes")
    win_addrs = (
        list(windows_addresses) if windows_addresses is not None else _default_addresses(2, windows_nodes)
    )
    lin_addrs = (
        list(linux_addresses)
        if linux_addresses is not None
        else _default_addresses(2 + windows_nodes, linux_nodes)
    )
    if len(win_addrs) < windows_nodes:
        raise ValueError(
            f"{windows_nodes} Windows nodes need {windows_nodes} addresses, got {len(win_addrs)}"
        )
    if len(lin_addrs) < linux_nodes:
        raise ValueError(f"{linux_nodes} Linux nodes need {linux_nodes} addresses, got {len(lin_addrs)}")
    for a in win_addrs[:windows_nodes] + lin_addrs[:linux_nodes]:
        ipaddress.ip_address(a)  # raises ValueError for a bad address
    return win_addrs, lin_addrs


def _windows_node(ids: _Ids, i: int, address: str) -> Node:
    profile = WINDOWS_2019 if i % 3 == 1 else WINDOWS_2022
    name = f"aksnpwin{i:06d}"
    return Node(
        name=name,
        os="windows",
        internal_ip=address,
        hostname=name,
        pod_cidr=f"10.224.{i}.0/24",
        windows_build=profile["windows_build"],
        os_image=profile["os_image"],
        kernel_version=profile["kernel_version"],
        os_sku=profile["os_sku"],
        agentpool="npwin",
        container_runtime_version=profile["container_runtime_version"],
        mac_address=ids.mac("00-0D-3A"),
        uid=ids.uuid(),
        labels={
            "agentpool": "npwin",
            "beta.kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "windows",
            "kubernetes.azure.com/agentpool": "npwin",
            "kubernetes.azure.com/mode": "user",
            "kubernetes.azure.com/os-sku": profile["os_sku"],
            "kubernetes.io/arch": "amd64",
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "windows",
            "node.kubernetes.io/instance-type": "Standard_D4s_v3",
            "node.kubernetes.io/windows-build": profile["windows_build"],
            "topology.kubernetes.io/region": "westeurope",
            "topology.kubernetes.io/zone": "0",
        },
        taints=[{"key": "os", "value": "windows", "effect": "NoSchedule"}],
    )


def _linux_node(ids: _Ids, j: int, address: str, *, pod_range: int) -> Node:
    name = f"aks-nodepool1-12345678-vmss{j:06d}"
    return Node(
        name=name,
        os="linux",
        internal_ip=address,
        hostname=name,
        pod_cidr=f"10.224.{pod_range}.0/24",
        windows_build=None,
        os_image=LINUX_UBUNTU["os_image"],
        kernel_version=LINUX_UBUNTU["kernel_version"],
        os_sku=LINUX_UBUNTU["os_sku"],
        agentpool="nodepool1",
        container_runtime_version=LINUX_UBUNTU["container_runtime_version"],
        mac_address=ids.mac("00-0D-3A"),
        uid=ids.uuid(),
        labels={
            "agentpool": "nodepool1",
            "beta.kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "linux",
            "kubernetes.azure.com/agentpool": "nodepool1",
            "kubernetes.azure.com/mode": "system",
            "kubernetes.azure.com/os-sku": "Ubuntu",
            "kubernetes.io/arch": "amd64",
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
            "node.kubernetes.io/instance-type": "Standard_D2s_v3",
            "topology.kubernetes.io/region": "westeurope",
            "topology.kubernetes.io/zone": "0",
        },
    )


class _IpPool:
    def __init__(self, ids: _Ids, node: Node) -> None:
        net = ipaddress.ip_network(node.pod_cidr)
        hosts = [str(h) for h in net.hosts()][9:250]  # keep .1-.9 free (gateway, reserved)
        self.free = sorted(ids.rng.sample(hosts, 40), key=lambda a: ipaddress.ip_address(a))

    def take(self) -> str:
        return self.free.pop(0)


class _PodMaker:
    """Adds pods to the cluster, giving each an IP from its node's pool, a MAC and a uid."""

    def __init__(self, ids: _Ids, nodes: list[Node]) -> None:
        self.ids = ids
        self.pods: list[Pod] = []
        self.pools = {n.name: _IpPool(ids, n) for n in nodes}

    def add(
        self,
        node: Node | None,
        namespace: str,
        name: str,
        app: str,
        image: str,
        port: int | None,
        labels: dict[str, str],
        owner: tuple[str, str],
        *,
        deny: bool = False,
        host_network: bool = False,
        container: str = "",
        udp_port: int | None = None,
    ) -> None:
        ip: str | None
        mac: str | None
        if node is None:
            ip, mac, phase = None, None, "Pending"
        elif host_network:
            ip, mac, phase = node.internal_ip, None, "Running"
        else:
            ip = self.pools[node.name].take()
            mac = self.ids.mac("00-15-5D") if node.is_windows else None
            phase = "Running"
        self.pods.append(
            Pod(
                namespace=namespace,
                name=name,
                node_name=node.name if node else None,
                ip=ip,
                mac=mac,
                labels=labels,
                app=app,
                image=image,
                phase=phase,
                container_port=port,
                network_policy_deny=deny,
                host_network=host_network,
                container_name=container or app,
                uid=self.ids.uuid(),
                owner_kind=owner[0],
                owner_name=owner[1],
                udp_port=udp_port,
            )
        )


def _ltsc(node: Node) -> str:
    return "ltsc2019" if node.os_sku == "Windows2019" else "ltsc2022"


def _build_pods(ids: _Ids, nodes: list[Node]) -> list[Pod]:
    maker = _PodMaker(ids, nodes)
    rs_webserver = _add_windows_pods(maker, [n for n in nodes if n.is_windows])
    _add_linux_pods(maker, [n for n in nodes if not n.is_windows])
    # One replica that cannot be scheduled: no node, no IP.
    maker.add(
        None,
        "default",
        f"win-webserver-{rs_webserver}-{ids.suffix()}",
        "win-webserver",
        "mcr.microsoft.com/windows/servercore/iis:windowsservercore-ltsc2022",
        80,
        {"app": "win-webserver", "pod-template-hash": rs_webserver},
        ("ReplicaSet", f"win-webserver-{rs_webserver}"),
    )
    return maker.pods


def _add_windows_pods(maker: _PodMaker, windows: list[Node]) -> str:
    """Web servers and a front end on every Windows node, a client on the first; returns the
    web server ReplicaSet's hash."""
    ids = maker.ids
    # Deployments: one ReplicaSet hash each, shared by its pods.
    rs_webserver = ids.hash(9)
    rs_frontend = ids.hash(9)
    rs_client = ids.hash(10)
    ds_cnm = ids.hash(5)
    for i, node in enumerate(windows):
        iis = f"mcr.microsoft.com/windows/servercore/iis:windowsservercore-{_ltsc(node)}"
        maker.add(
            node,
            "default",
            f"win-webserver-{rs_webserver}-{ids.suffix()}",
            "win-webserver",
            iis,
            80,
            {"app": "win-webserver", "pod-template-hash": rs_webserver},
            ("ReplicaSet", f"win-webserver-{rs_webserver}"),
        )
        maker.add(
            node,
            "web",
            f"iis-frontend-{rs_frontend}-{ids.suffix()}",
            "iis-frontend",
            iis,
            80,
            {
                "app": "iis-frontend",
                "pod-template-hash": rs_frontend,
                **(NETWORK_POLICY_POD_LABELS if i == 0 else {}),
            },
            ("ReplicaSet", f"iis-frontend-{rs_frontend}"),
            deny=(i == 0),
        )
        if i == 0:
            maker.add(
                node,
                "default",
                f"win-client-{rs_client}-{ids.suffix()}",
                "win-client",
                f"mcr.microsoft.com/windows/nanoserver:{_ltsc(node)}",
                None,
                {"app": "win-client", "pod-template-hash": rs_client},
                ("ReplicaSet", f"win-client-{rs_client}"),
            )
        maker.add(
            node,
            "kube-system",
            f"cloud-node-manager-windows-{ids.suffix()}",
            "cloud-node-manager-windows",
            "mcr.microsoft.com/oss/kubernetes/azure-cloud-node-manager:v1.28.5",
            None,
            {"k8s-app": "cloud-node-manager-windows", "controller-revision-hash": ds_cnm},
            ("DaemonSet", "cloud-node-manager-windows"),
            host_network=True,
            container="cloud-node-manager",
        )
    return rs_webserver


def _add_linux_pods(maker: _PodMaker, linux: list[Node]) -> None:
    """CoreDNS on the first two Linux nodes, kube-proxy on each, metrics-server and nginx on the first."""
    ids = maker.ids
    rs_coredns = ids.hash(10)
    rs_metrics = ids.hash(10)
    rs_nginx = ids.hash(10)
    ds_kp = ids.hash(10)
    for j, node in enumerate(linux):
        if j < 2:
            copies = 2 if len(linux) == 1 else 1
            for _ in range(copies):
                maker.add(
                    node,
                    "kube-system",
                    f"coredns-{rs_coredns}-{ids.suffix()}",
                    "coredns",
                    "mcr.microsoft.com/oss/kubernetes/coredns:v1.9.4",
                    53,
                    {"k8s-app": "kube-dns", "pod-template-hash": rs_coredns},
                    ("ReplicaSet", f"coredns-{rs_coredns}"),
                    udp_port=53,
                )
        maker.add(
            node,
            "kube-system",
            f"kube-proxy-{ids.suffix()}",
            "kube-proxy",
            "mcr.microsoft.com/oss/kubernetes/kube-proxy:v1.28.5",
            None,
            {"component": "kube-proxy", "tier": "node", "controller-revision-hash": ds_kp},
            ("DaemonSet", "kube-proxy"),
            host_network=True,
        )
        if j == 0:
            maker.add(
                node,
                "kube-system",
                f"metrics-server-{rs_metrics}-{ids.suffix()}",
                "metrics-server",
                "mcr.microsoft.com/oss/kubernetes/metrics-server:v0.6.3",
                4443,
                {"k8s-app": "metrics-server", "pod-template-hash": rs_metrics},
                ("ReplicaSet", f"metrics-server-{rs_metrics}"),
            )
            maker.add(
                node,
                "default",
                f"nginx-{rs_nginx}-{ids.suffix()}",
                "nginx",
                "mcr.microsoft.com/oss/nginx/nginx:1.25.3",
                80,
                {"app": "nginx", "pod-template-hash": rs_nginx},
                ("ReplicaSet", f"nginx-{rs_nginx}"),
            )


def _build_services(ids: _Ids) -> list[Service]:
    used = {KUBERNETES_SERVICE_IP, KUBE_DNS_IP}

    def vip() -> str:
        while True:
            a = f"10.0.{ids.rng.randrange(0, 256)}.{ids.rng.randrange(2, 255)}"
            if a not in used:
                used.add(a)
                return a

    return [
        Service("default", "kubernetes", KUBERNETES_SERVICE_IP, [("https", "TCP", 443, 443)], {}, ids.uuid()),
        Service(
            "kube-system",
            "kube-dns",
            KUBE_DNS_IP,
            [("dns", "UDP", 53, 53), ("dns-tcp", "TCP", 53, 53)],
            {"k8s-app": "kube-dns"},
            ids.uuid(),
        ),
        Service(
            "kube-system",
            "metrics-server",
            vip(),
            [("https", "TCP", 443, 4443)],
            {"k8s-app": "metrics-server"},
            ids.uuid(),
        ),
        Service(
            "default", "win-webserver", vip(), [("http", "TCP", 80, 80)], {"app": "win-webserver"}, ids.uuid()
        ),
        Service("web", "iis-frontend", vip(), [("http", "TCP", 80, 80)], {"app": "iis-frontend"}, ids.uuid()),
        Service("default", "nginx", vip(), [("http", "TCP", 80, 80)], {"app": "nginx"}, ids.uuid()),
    ]
