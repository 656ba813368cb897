"""pktmon filters: a capture's lists -> single-value pktmon filters, and their argv.

pktmon semantics (reference section 1.1): a filter holds at most two values
of a kind and a packet must match both; all parameters of a filter must
match (AND); a packet is reported when it matches any filter (OR); a host
takes at most 32 filters. A request's lists mean "any of these" (OR within
a list, AND across lists), which pktmon can only express as the cross
product of single-value filters: `ips {a,b,c} x ports {80,443} x TCP` is 6
filters. A request needing more than 32 is refused (UnsupportedRequest,
INVALID_ARGUMENT for the client), never truncated.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from winspect.contract import MAX_PKTMON_FILTERS, too_many_filters
from winspect.node.errors import UnsupportedRequest
from winspect.node.types import CaptureSpec

T = TypeVar("T")

MAX_FILTERS = MAX_PKTMON_FILTERS
FILTER_NAME_PREFIX = "winspect-"


@dataclass(frozen=True)
class PktmonFilter:
    """One pktmon filter: at most one value of each kind (AND within a filter).

    `ip` is an address or a CIDR, `mac` is normalised (dash form), `protocol`
    one of TCP, UDP, ICMP, ICMPv6, `tcp_flags` only with TCP.
    """

    ip: str | None = None
    mac: str | None = None
    port: int | None = None
    protocol: str | None = None
    tcp_flags: tuple[str, ...] = ()

    def args(self) -> list[str]:
        """The `pktmon filter add <name>` arguments after the name."""
        argv: list[str] = []
        if self.mac is not None:
            argv += ["-m", self.mac]
        if self.ip is not None:
            argv += ["-i", self.ip]
        if self.port is not None:
            argv += ["-p", str(self.port)]
        if self.protocol is not None:
            # TCP flags must follow `-t TCP`, so the protocol goes last.
            argv += ["-t", self.protocol, *self.tcp_flags]
        return argv


def expand_filters(
    ips: Sequence[str],
    macs: Sequence[str],
    ports: Sequence[int],
    protocols: Sequence[tuple[str, tuple[str, ...]]],
) -> list[PktmonFilter]:
    """The cross product of the (validated, de-duplicated) lists; [] when all are empty.

    Raises UnsupportedRequest when more than MAX_FILTERS filters would be needed.
    """
    if not (ips or macs or ports or protocols):
        return []
    refused = too_many_filters(
        {"IPs": len(ips), "MACs": len(macs), "ports": len(ports), "protocols": len(protocols)}
    )
    if refused is not None:
        raise UnsupportedRequest(refused)
    filters = []
    for ip, mac, port, protocol in itertools.product(
        _or_none(ips), _or_none(macs), _or_none(ports), _or_none(protocols)
    ):
        filters.append(
            PktmonFilter(
                ip=ip,
                mac=mac,
                port=port,
                protocol=protocol[0] if protocol else None,
                tcp_flags=protocol[1] if protocol else (),
            )
        )
    return filters


def _or_none(values: Sequence[T]) -> Sequence[T | None]:
    return values if values else [None]


def spec_filters(spec: CaptureSpec) -> list[PktmonFilter]:
    """The pktmon filters of a capture."""
    return expand_filters(spec.ips, spec.macs, spec.ports, spec.protocols)


def filter_names(count: int) -> list[str]:
    """pktmon filter names: winspect-1, winspect-2, ..."""
    return [f"{FILTER_NAME_PREFIX}{i}" for i in range(1, count + 1)]
