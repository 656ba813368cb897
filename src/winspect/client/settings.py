"""The global options of one winspect run, after defaults are applied."""

from __future__ import annotations

from dataclasses import dataclass, field

from winspect.client.filters import TargetSpec
from winspect.contract import DEFAULT_PORT, DEFAULT_TOOL_TIMEOUT

# Longer than the node server's own tool timeout: its diagnosis of a hung tool arrives first.
DEFAULT_TIMEOUT = DEFAULT_TOOL_TIMEOUT + 15.0
# A node that does not accept a connection within this many seconds is reported as down.
CONNECT_TIMEOUT = 5.0


@dataclass
class Settings:
    kubeconfig: str | None = None
    context: str | None = None
    namespace: str | None = None  # None: the context's namespace, else "default"
    port: int = DEFAULT_PORT
    # False: --port was not given; the port of the installed DaemonSet is used when readable.
    port_given: bool = False
    targets: list[TargetSpec] = field(default_factory=list)
    output: str = "text"  # text | wide | json
    yaml: bool = False  # -o yaml: the JSON document (output "json"), printed as YAML
    timeout: float = DEFAULT_TIMEOUT
    verbose: int = 0
    color: bool = False
    # Node connections (winspect.client.security): plain text without credentials, or the CA to trust.
    insecure: bool = False
    ca_file: str | None = None
    # How node servers are reached (winspect.client.route): auto, direct or tunnel.
    connect: str = "auto"

    @property
    def connect_timeout(self) -> float:
        return min(CONNECT_TIMEOUT, self.timeout)
