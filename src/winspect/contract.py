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
