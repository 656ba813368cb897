"""Names and defaults of winspect's objects in the cluster (the client, deploy and the sandbox share them)."""

from __future__ import annotations

NAMESPACE = "winspect-system"
DAEMONSET = "winspectserv"
CONTAINER = "winspectserv"
PORT_NAME = "grpc"
# The labels of the DaemonSet's pods (its selector): a tunnel finds the pod on a node by them.
SERVER_POD_LABELS = (("app.kubernetes.io/name", "winspect"), ("app.kubernetes.io/component", "server"))
PORT_ENV = "WINSPECT_PORT"
DEFAULT_IMAGE = "ghcr.io/winspect/winspectserv:0.1.0"
# Objects install owns carry this label; uninstall deletes the namespace only when it has it.
MANAGED_LABEL = ("app.kubernetes.io/name", "winspect")

# Security (docs/security.md). The server's certificate names SERVER_NAME; clients verify it against
# the CA in ConfigMap CA_CONFIGMAP (key CA_KEY), with SERVER_NAME as the TLS target name.
TLS_SECRET = "winspect-tls"  # noqa: S105 - the Secret's name
CA_CONFIGMAP = "winspect-ca"
CA_KEY = "ca.crt"
SERVER_NAME_KEY = "server-name"
SERVER_NAME = "winspectserv.winspect-system.svc"
# ServiceAccount whose short-lived tokens client-certificate users request (TokenRequest).
CLIENT_SERVICE_ACCOUNT = "winspect-client"
API_GROUP = "winspect.io"
VIEWER_ROLE = "winspect-viewer"
CAPTURE_ROLE = "winspect-capture"
