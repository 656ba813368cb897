"""What the client and the node server agree on besides the winspect.v1 messages: the port, and
the limits of a capture request (the server enforces them, the CLI checks them before sending)."""

from __future__ import annotations

DEFAULT_PORT = 50051
# Bytes pktmon logs of each packet (--pkt-size); 0 is the whole packet.
MAX_PKT_SIZE = 65535
# The longest capture a request may ask for, and the highest winspectserv --max-capture-duration: 7 days.
MAX_CAPTURE_SECONDS = 7 * 24 * 3600
# How long winspectserv lets one node tool call run by default (winspectserv --tool-timeout). The
# client's default deadline per node call is longer, so a tool that hangs is reported by the
# server (which tool, after how long) rather than as a node that does not answer.
DEFAULT_TOOL_TIMEOUT = 30.0
# pktmon keeps at most this many filters on a host; a capture's lists become their cross product.
MAX_PKTMON_FILTERS = 32


def too_many_filters(counts: dict[str, int]) -> str | None:
    """Why lists of these lengths ({"IPs": 3, "ports": 2, ...}, after removing duplicates) cannot
    be a capture's pktmon filters, or None when they fit. pktmon matches at most one value of each
    kind per filter, so every combination of values is a filter."""
    needed = 1
    for count in counts.values():
        needed *= max(count, 1)
    if needed <= MAX_PKTMON_FILTERS:
        return None
    parts = [f"{count} {label}" for label, count in counts.items() if count > 1]
    return (
        f"these filters need {needed} pktmon filters ({' x '.join(parts)}; pktmon matches at most one "
        f"value of each kind per filter, so every combination is a filter), but pktmon allows at most "
        f"{MAX_PKTMON_FILTERS}: use fewer values, or a CIDR instead of single IPs"
    )
