"""Names for what a capture shows: pods for pod IPs and container vNICs, services for
ClusterIPs, and short forms of pktmon's component names.

One lookup serves every output (text, JSON, pcapng interfaces, counters, HNS
tables): the pods and services the client reads from Kubernetes (one list
each) or knows from the command line, and what each node says about its
components when a capture starts (CaptureInfo: a container vNIC's HNS
endpoint and pod). A vNIC the node did not describe gets its pod from the
traffic: a container vNIC only carries its own pod's packets, so the one
local pod address among a packet's addresses names it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from winspect.client.settings import Settings
    from winspect.client.targets import Plan

_DIRECTION_RX = 1
_DIRECTION_TX = 2
_GUID = re.compile(r"^\{?[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-")


@dataclass(frozen=True)
class KnownPod:
    """A pod the client knows (Kubernetes, or the command line)."""

    namespace: str
    name: str
    ip: str
    node: str = ""  # "" = any node (--target: where the pod runs is not known)

    @property
    def label(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class KnownService:
    namespace: str
    name: str
    ips: tuple[str, ...]  # ClusterIPs

    @property
    def label(self) -> str:
        return f"{self.namespace}/{self.name}"


def short_component(name: str) -> str:
    """pktmon's component name in a few letters: VFP, vSwitch, NIC, vNIC, host vNIC, WFP, TCPIP.
    A name winspect does not know is kept whole (never cut mid-word)."""
    lowered = name.lower()
    if not name:
        return ""
    if "vfp" in lowered:
        return "VFP"
    if "virtual switch" in lowered:
        return "vSwitch"
    if _GUID.match(name) or lowered.startswith("container nic"):
        return "vNIC"
    if "virtual ethernet adapter" in lowered:
        return "host vNIC"
    if lowered.startswith("wfp"):
        return "WFP"
    if lowered.startswith("tcpip"):
        return "TCPIP"
    if any(word in lowered for word in ("network adapter", "ethernet", "mellanox", "connectx", " nic")):
        return "NIC"
    return name


@dataclass(frozen=True)
class ComponentLabel:
    """How one node's component is shown: short form, and its pod for a container vNIC."""

    short: str
    pod: str | None = None  # namespace/name

    @property
    def text(self) -> str:
        """`vNIC web/web-0` (the pod's name alone in its default namespace is not known here)."""
        return f"{self.short} {self.pod}" if self.pod else self.short


class Names:
    """The one lookup: pod and service names by IP, component labels per node."""

    def __init__(
        self, pods: Iterable[KnownPod] = (), services: Iterable[KnownService] = (), namespace: str = "default"
    ) -> None:
        self.namespace = namespace  # the kubeconfig's: text shows its pods and services by name alone
        self.pods = list(pods)
        self.pod_by_ip: dict[str, str] = {}
        self._local: dict[str, dict[str, KnownPod]] = {}  # node -> ip -> pod, "" = any node
        for pod in self.pods:
            if pod.ip:
                self.pod_by_ip.setdefault(pod.ip, pod.label)
                self._local.setdefault(pod.node, {})[pod.ip] = pod
        self.service_by_ip: dict[str, str] = {}
        for svc in services:
            for ip in svc.ips:
                self.service_by_ip.setdefault(ip, svc.label)
        self._described: dict[str, dict[int, Any]] = {}  # node -> component id -> CaptureComponent
        self._by_mac: dict[tuple[str, str], KnownPod] = {}  # (node, MAC) -> pod, "" = any node
        self._labels: dict[tuple[str, int], ComponentLabel] = {}
        self._cache: dict[str, dict[str, str]] = {}

    def json_cache(self, which: str, make: Callable[[dict[str, str]], dict[str, str]]) -> dict[str, str]:
        """`make(pod_by_ip)` ("pods") or `make(service_by_ip)` ("services"), made once."""
        cached = self._cache.get(which)
        if cached is None:
            cached = self._cache[which] = make(self.pod_by_ip if which == "pods" else self.service_by_ip)
        return cached

    def __bool__(self) -> bool:
        return bool(self.pod_by_ip or self.service_by_ip or self._described)

    def ip(self, ip: str) -> str | None:
        """The pod or the service behind an address, or None."""
        return self.pod_by_ip.get(ip) or self.service_by_ip.get(ip)

    # ------------------------------------------------------------ components

    def add_mac(self, node: str, mac: str, pod: KnownPod) -> None:
        """A pod's MAC on its node (its HNS endpoint's): the component with that MAC is its vNIC."""
        self._by_mac[(node, _mac_key(mac))] = pod

    def _mac_pod(self, node: str, mac: str) -> KnownPod | None:
        if not mac or not self._by_mac:
            return None
        key = _mac_key(mac)
        return self._by_mac.get((node, key)) or self._by_mac.get(("", key))

    def started(self, node: str, components: Iterable[Any]) -> None:
        """The node's components as its CaptureInfo describes them."""
        described = self._described.setdefault(node, {})
        for c in components:
            described[c.id] = c
            self._labels.pop((node, c.id), None)
            mac_pod = self._mac_pod(node, c.mac)
            if c.endpoint_id or mac_pod is not None:  # a container vNIC: its label (and pod) for good
                pod = self.component_pod(node, c)
                self._labels[(node, c.id)] = ComponentLabel("vNIC", pod.label if pod else None)

    def described(self, node: str, component_id: int) -> Any | None:
        return self._described.get(node, {}).get(component_id)

    def component_pod(self, node: str, component: Any) -> KnownPod | None:
        """The pod behind a described container vNIC: the node's match, else a known pod with its IP."""
        if component.HasField("pod") and component.pod.name:
            pod = component.pod
            return KnownPod(pod.namespace, pod.name, pod.ip, node)
        by_mac = self._mac_pod(node, component.mac)
        if by_mac is not None:
            return by_mac
        local, anywhere = self._local.get(node, {}), self._local.get("", {})
        for ip in component.ips:
            known = local.get(ip) or anywhere.get(ip)
            if known is not None:
                return known
        return None

    def component(self, node: str, p: Any) -> ComponentLabel:
        """The label of the component a packet was seen at (cached once the pod is known)."""
        key = (node, p.component_id)
        label = self._labels.get(key)
        if label is not None:
            return label
        # (a vNIC the node described has its label from `started`)
        described = self.described(node, p.component_id)
        name = p.component_name or (described.name if described is not None else "")
        short = short_component(name) or str(p.component_id)
        if short != "vNIC":
            label = ComponentLabel(short)
            self._labels[key] = label
            return label
        guess, sure = self._vnic_pod(node, p)
        label = ComponentLabel("vNIC", guess)
        if sure:
            self._labels[key] = label
        return label

    def _vnic_pod(self, node: str, p: Any) -> tuple[str | None, bool]:
        """(pod, certain) of an undescribed vNIC, from the local pod among the packet's addresses."""
        local = self._local.get(node, {})
        anywhere = self._local.get("", {})
        found_src = local.get(p.src_ip) or anywhere.get(p.src_ip) if p.src_ip else None
        found_dst = local.get(p.dst_ip) or anywhere.get(p.dst_ip) if p.dst_ip else None
        src = found_src.label if found_src else None
        dst = found_dst.label if found_dst else None
        if src and dst and src != dst:
            # Two local pods talking: the vNIC sends its own pod's packets (Tx), receives the other's.
            return (
                src if p.direction == _DIRECTION_TX else dst if p.direction == _DIRECTION_RX else None
            ), False
        return src or dst, bool(src or dst)


def _mac_key(mac: str) -> str:
    return mac.strip().upper().replace(":", "-")


def plan_names(settings: Settings, plan: Plan, warn: Callable[[str], None]) -> Names:
    """The names for a capture of `plan`: its pods, and the cluster's pods and services."""
    pods = [KnownPod(p.namespace, p.name, p.ip, p.node) for p in plan.pods]
    return load_names(settings, [t.name for t in plan.targets], pods, warn)


def load_names(
    settings: Settings,
    nodes: list[str],
    pods: Iterable[KnownPod],
    warn: Callable[[str], None],
    *,
    from_cluster: bool = True,
    services: bool = True,
) -> Names:
    """Names of the pods (on `nodes` and elsewhere: remote peers too) and services, from
    Kubernetes; with a warning and only `pods` when the cluster cannot be read."""
    known = list(pods)
    namespace = settings.namespace or "default"
    if not from_cluster or settings.targets:
        return Names(known, namespace=namespace)
    from winspect.errors import WinspectError
    from winspect.kube.cluster import Cluster
    from winspect.kube.kubeconfig import resolve_config

    found: list[KnownService] = []
    try:
        resolved = resolve_config(settings.kubeconfig, settings.context, settings.namespace)
        namespace = resolved.namespace or namespace
        cluster = Cluster(resolved, settings.timeout)
        try:
            listed = cluster.pods(None)
            try:
                found = _services(cluster) if services else []
            except WinspectError as exc:  # a user may list pods but not services: pods still named
                if settings.verbose:
                    warn(f"services get no names: {exc.message}")
        finally:
            cluster.close()
    except WinspectError as exc:
        warn(f"packets get no pod names: {exc.message}")
        return Names(known, namespace=namespace)
    wanted = set(nodes)
    seen = {(p.namespace, p.name) for p in known}
    for p in listed:
        if p.ip and not p.host_network and (p.namespace, p.name) not in seen:
            # pods of other nodes name remote peers; only local ones name this node's vNICs
            known.append(KnownPod(p.namespace, p.name, p.ip, p.node if p.node in wanted else "-"))
    return Names(known, found, namespace)


def _services(cluster: Any) -> list[KnownService]:
    from lightkube.resources.core_v1 import Service

    raw = cluster.call("list services in all namespaces", lambda c: list(c.list(Service, namespace="*")))
    found = []
    for s in raw:
        spec = s.spec
        if spec is None:
            continue
        ips = [ip for ip in (spec.clusterIPs or [spec.clusterIP]) if ip and ip != "None"]
        if ips:
            found.append(KnownService(s.metadata.namespace or "", s.metadata.name, tuple(ips)))
    return found
