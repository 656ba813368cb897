"""vfpctrl adapter: port counters of a pod's VFP port and the host's ports, and a pod port's rules.

Which port (reference section 2.1):
- pod: the HNS endpoint's allocator tagged `Endpoint Port` -> `EndpointPortGuid`;
- host vNIC: the HNS network's allocator tagged `Host Vnic` -> `EndpointPortGuid`;
- external adapter: the network's allocator tagged `External Adapter Info`
  -> `ExternalNicPortGuid`;
- fallback when the network has no such allocators: the network's
  `ManagementIP` -> that adapter's MAC -> the `/list-vmswitch-port` entries
  with that MAC, split by port type (Internal = host vNIC, External =
  external adapter). The MAC is taken from an allocator of the network
  that carries the management IP and a MAC, else from a local HNS endpoint
  holding the management IP, else from the single External port of the
  network's switch (on l2bridge the host vNIC shares the NIC's MAC).

Port GUIDs come from HNS output, so they are checked to be GUIDs before
they go into an argv.
"""

from __future__ import annotations

import ipaddress
import re

from winspect.node.errors import ToolFailed, ToolOutputError
from winspect.node.mac import normalise_mac
from winspect.node.types import HnsKind, PodTarget
from winspect.node.windows.hns import (
    Hnsdiag,
    allocator_value,
    endpoint_ips,
    endpoint_mac,
    get_key,
    is_remote,
    walk_allocators,
)
from winspect.node.windows.parsers.hnsdiag import HnsDocument
from winspect.node.windows.parsers.vfpctrl import (
    VmSwitchPort,
    parse_port_counters,
    parse_vmswitch_ports,
    vfp_error,
)
from winspect.node.windows.parsers.vfpctrl_rules import parse_layers, parse_rules
from winspect.node.windows.runner import ToolResult, ToolRunner
from winspect.v1 import winspect_pb2 as pb

TOOL = "vfpctrl"
# Layer names as vfpctrl prints them (ACL_ENDPOINT_LAYER); the server validates requests to this too.
_LAYER = re.compile(r"^[A-Za-z0-9_]{1,64}\Z")
_GUID = re.compile(r"^\{?[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}?\Z")


class Vfpctrl:
    def __init__(self, runner: ToolRunner) -> None:
        self._runner = runner

    def _run(self, args: list[str]) -> ToolResult:
        result = self._runner.run(TOOL, args)
        error = vfp_error(result.stdout) or vfp_error(result.stderr)
        if error is not None:  # vfpctrl may exit 0 after printing ERROR:
            raise ToolFailed(result.argv, result.exit_code, result.output)
        return result

    def port_counters(self, port_guid: str) -> list[pb.VfpDirectionCounters]:
        _check_guid(port_guid)
        result = self._run(["/port", port_guid, "/get-port-counter"])
        sections = parse_port_counters(result.stdout)
        if not sections:
            raise ToolOutputError(
                f"`vfpctrl /port {port_guid} /get-port-counter` printed no counters: {result.output[:2000]}"
            )
        return sections

    def ports(self) -> list[VmSwitchPort]:
        return parse_vmswitch_ports(self._run(["/list-vmswitch-port"]).stdout)

    def layers(self, port_guid: str) -> list[pb.VfpLayer]:
        _check_guid(port_guid)
        return parse_layers(self._run(["/port", port_guid, "/list-layer"]).stdout)

    def rules(self, port_guid: str, layer: str) -> list[pb.VfpGroup]:
        """Groups and rules of one layer (`layer` is validated by the server)."""
        _check_guid(port_guid)
        if not _LAYER.match(layer):
            raise ToolOutputError(f"not a VFP layer name: {layer!r}")
        return parse_rules(self._run(["/port", port_guid, "/layer", layer, "/list-rule"]).stdout)


def _check_guid(port_guid: str) -> None:
    if not _GUID.match(port_guid):
        raise ToolOutputError(f"HNS gave a VFP port name that is not a GUID: {port_guid!r}")


class VfpCounters:
    """Pod IP -> HNS endpoint -> VFP port(s) -> counters."""

    def __init__(self, hns: Hnsdiag, vfp: Vfpctrl) -> None:
        self._hns = hns
        self._vfp = vfp

    def collect(self, pod: PodTarget, detailed: bool) -> list[pb.VfpPortCounters]:
        endpoints, endpoint, pod_guid, name = self._pod_port(pod)
        result = [
            pb.VfpPortCounters(
                role=pb.VFP_PORT_ROLE_POD,
                port_guid=pod_guid,
                friendly_name=name,
                directions=self._vfp.port_counters(pod_guid),
            )
        ]
        if detailed:
            result += self._host_ports(endpoint, endpoints)
        return result

    def rules(self, pod: PodTarget, layers: tuple[str, ...]) -> pb.VfpRulesResponse:
        """The pod port's layers (all, or the ones named) with their groups and rules."""
        _, _, pod_guid, name = self._pod_port(pod)
        known = self._vfp.layers(pod_guid)
        if layers:
            by_name = {layer.name.lower(): layer for layer in known}
            known = [by_name.get(wanted.lower(), pb.VfpLayer(name=wanted)) for wanted in layers]
        response = pb.VfpRulesResponse(port_guid=pod_guid, friendly_name=name)
        for layer in known:
            found = response.layers.add()
            found.CopyFrom(layer)
            found.groups.extend(self._vfp.rules(pod_guid, layer.name))
        return response

    def _pod_port(self, pod: PodTarget) -> tuple[list[HnsDocument], HnsDocument, str, str]:
        """(all endpoints, the pod's endpoint, its VFP port GUID, the endpoint's name)."""
        endpoints, _ = self._hns.objects(HnsKind.ENDPOINTS)
        endpoint = self._hns.local_endpoint(pod, endpoints)
        pod_guid = allocator_value(endpoint.value, "Endpoint Port", "EndpointPortGuid")
        if not pod_guid:
            raise ToolOutputError(
                f"HNS endpoint {endpoint.id} of {pod.label()} has no allocator tagged 'Endpoint Port'"
            )
        name = get_key(endpoint.value, "Name")
        return endpoints, endpoint, pod_guid, name if isinstance(name, str) else ""

    def _host_ports(self, endpoint: HnsDocument, endpoints: list[HnsDocument]) -> list[pb.VfpPortCounters]:
        network_id = get_key(endpoint.value, "VirtualNetwork")
        network_name = get_key(endpoint.value, "VirtualNetworkName")
        network = self._hns.network(
            network_id if isinstance(network_id, str) else "",
            network_name if isinstance(network_name, str) else "",
        )
        host_guid = allocator_value(network.value, "Host Vnic", "EndpointPortGuid")
        external_guid = allocator_value(network.value, "External Adapter Info", "ExternalNicPortGuid")
        switch_ports = self._vfp.ports()
        by_name = {port.name.lower(): port for port in switch_ports}
        if not host_guid or not external_guid:
            fallback_host, fallback_external = _ports_by_management_mac(network, endpoints, switch_ports)
            host_guid = host_guid or fallback_host
            external_guid = external_guid or fallback_external
        found: list[pb.VfpPortCounters] = []
        for role, guid, what in (
            (pb.VFP_PORT_ROLE_HOST_VNIC, host_guid, "host vNIC"),
            (pb.VFP_PORT_ROLE_EXTERNAL_ADAPTER, external_guid, "external adapter"),
        ):
            if not guid:
                raise ToolOutputError(
                    f"could not find the {what} VFP port of HNS network {network.id}: no allocator tagged "
                    f"{'Host Vnic' if role == pb.VFP_PORT_ROLE_HOST_VNIC else 'External Adapter Info'} "
                    "and no vmswitch port with the management adapter's MAC"
                )
            port = by_name.get(guid.strip("{}").lower())
            found.append(
                pb.VfpPortCounters(
                    role=role,
                    port_guid=guid,
                    friendly_name=port.friendly_name if port else "",
                    directions=self._vfp.port_counters(guid),
                )
            )
        return found


def _ports_by_management_mac(
    network: HnsDocument, endpoints: list[HnsDocument], switch_ports: list[VmSwitchPort]
) -> tuple[str, str]:
    """(host vNIC port, external port) names found through the management adapter's MAC."""
    network_name = get_key(network.value, "Name")
    on_switch = [p for p in switch_ports if not network_name or p.switch_name in ("", network_name)]
    mac = ""
    management_ip = get_key(network.value, "ManagementIP")
    if isinstance(management_ip, str) and management_ip:
        try:
            wanted = ipaddress.ip_address(management_ip)
        except ValueError:
            wanted = None
        for allocator in walk_allocators(network.value):  # the host vNIC allocator may carry both
            ip, allocator_mac = get_key(allocator, "ManagementIP"), get_key(allocator, "MacAddress")
            same_ip = wanted is not None and isinstance(ip, str) and _parses_to(ip, wanted)
            if same_ip and isinstance(allocator_mac, str):
                mac = _mac_or_empty(allocator_mac)
                break
        for doc in endpoints:
            if mac:
                break
            if wanted is None or is_remote(doc.value):
                continue
            if any(_parses_to(ip, wanted) for ip in endpoint_ips(doc.value)):
                mac = endpoint_mac(doc.value)
                break
    if not mac:
        externals = [p for p in on_switch if p.port_type.lower() == "external" and p.mac]
        if len(externals) == 1:
            mac = externals[0].mac
    if not mac:
        return "", ""
    host = next((p.name for p in on_switch if p.mac == mac and p.port_type.lower() == "internal"), "")
    external = next((p.name for p in on_switch if p.mac == mac and p.port_type.lower() == "external"), "")
    return host, external


def _mac_or_empty(value: str) -> str:
    try:
        return normalise_mac(value)
    except ValueError:
        return ""


def _parses_to(value: str, wanted: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    try:
        return ipaddress.ip_address(value.split("/")[0]) == wanted
    except ValueError:
        return False
