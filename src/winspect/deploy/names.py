"""Names and defaults of the installed objects (no imports: the client may use them freely)."""

from __future__ import annotations

NAMESPACE = "winspect-system"
DAEMONSET = "winspectserv"
CONTAINER = "winspectserv"
PORT_NAME = "grpc"
PORT_ENV = "WINSPECT_PORT"
DEFAULT_IMAGE = "ghcr.io/winspect/winspectserv:0.1.0"
DEFAULT_PORT = 50051
# Objects install owns carry this label; uninstall deletes the namespace only when it has it.
MANAGED_LABEL = ("app.kubernetes.io/name", "winspect")
