"""The port of the installed winspectserv DaemonSet, for the client when --port is not given."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from winspect.kube.names import CONTAINER, DAEMONSET, NAMESPACE, PORT_NAME

if TYPE_CHECKING:
    from lightkube import Client


def daemonset_port(daemonset: Any) -> int | None:
    """The port of the container port named grpc (hostPort, else containerPort), or None."""
    spec = daemonset.spec.template.spec if daemonset.spec and daemonset.spec.template else None
    containers = (spec.containers if spec else None) or []
    # The winspectserv container first; any container's grpc port otherwise.
    containers = sorted(containers, key=lambda c: c.name != CONTAINER)
    for c in containers:
        for p in c.ports or []:
            if p.name == PORT_NAME:
                port = p.hostPort or p.containerPort
                return int(port) if port else None
    return None


def installed_port(client: Client) -> int | None:
    """The port winspectserv listens on, read from DaemonSet winspect-system/winspectserv.

    None when it is not installed (404) or the user may not read it (403):
    the caller then uses its default. Other API errors propagate
    (lightkube.ApiError, httpx2 errors) for the caller's error mapping.
    """
    from lightkube import ApiError
    from lightkube.resources.apps_v1 import DaemonSet

    try:
        ds = client.get(DaemonSet, DAEMONSET, namespace=NAMESPACE)
    except ApiError as exc:
        if (exc.status.code or exc.response.status_code) in (403, 404):
            return None
        raise
    return daemonset_port(ds)
