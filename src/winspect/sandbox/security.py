"""The sandbox's node servers run secure, as `winspect install` sets them up in a cluster.

`prepare_node_security` makes winspect's CA and the servers' certificate
(winspect.deploy.pki: the same code install uses), the kubeconfig the
servers check their callers with (the identity of the DaemonSet's
ServiceAccount, allowed TokenReview and SubjectAccessReview by the
sandbox's policy), and the objects the API serves for clients: namespace
winspect-system and ConfigMap winspect-ca with the CA. Tests use it too,
for secure servers of their own.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from winspect.deploy.pki import make_server_tls
from winspect.kube.names import CA_CONFIGMAP, CA_KEY, MANAGED_LABEL, NAMESPACE, SERVER_NAME, SERVER_NAME_KEY
from winspect.sandbox.kubeapi.auth import Identity
from winspect.sandbox.kubeapi.kubeconfig import write_kubeconfig

Obj = dict[str, Any]


@dataclass(frozen=True)
class NodeSecurity:
    """Files of the node servers' TLS identity and Kubernetes credentials."""

    ca_file: Path  # winspect's CA (what clients trust: --ca-file, or the ConfigMap)
    cert_file: Path
    key_file: Path
    kubeconfig: Path  # the servers' own credentials for TokenReview / SubjectAccessReview
    ca_pem: bytes
    server_name: str = SERVER_NAME

    def server_args(self) -> list[str]:
        """winspectserv's flags for this identity."""
        return [
            "--tls-cert",
            str(self.cert_file),
            "--tls-key",
            str(self.key_file),
            "--kubeconfig",
            str(self.kubeconfig),
        ]

    def objects(self) -> list[Obj]:
        """What the Kubernetes API serves for clients: the namespace and the CA ConfigMap."""
        return ca_objects(self.ca_pem)


def ca_objects(ca_pem: bytes) -> list[Obj]:
    """Namespace winspect-system and ConfigMap winspect-ca, as `winspect install` leaves them."""
    key, value = MANAGED_LABEL
    created = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    def meta(name: str, namespace: str | None = None, **labels: str) -> Obj:
        out: Obj = {"name": name, "uid": str(uuid.uuid4()), "creationTimestamp": created}
        if namespace:
            out["namespace"] = namespace
        out["labels"] = {key: value, **labels}
        return out

    return [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": meta(NAMESPACE, **{"kubernetes.io/metadata.name": NAMESPACE}),
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta(CA_CONFIGMAP, NAMESPACE),
            "data": {CA_KEY: ca_pem.decode(), SERVER_NAME_KEY: SERVER_NAME},
        },
    ]


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def prepare_node_security(directory: Path, api_url: str, api_ca_pem: bytes, server: Identity) -> NodeSecurity:
    """Write the CA, the servers' certificate and key, and their kubeconfig into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    tls = make_server_tls()
    ca, crt, key = (
        directory / "winspect-ca.crt",
        directory / "winspectserv.crt",
        directory / "winspectserv.key",
    )
    ca.write_bytes(tls.ca_pem)
    crt.write_bytes(tls.cert_pem)
    _write_private(key, tls.key_pem)
    kubeconfig = write_kubeconfig(directory / "winspectserv.kubeconfig", api_url, api_ca_pem, [server])
    return NodeSecurity(ca, crt, key, kubeconfig, tls.ca_pem)


def secure_channel(
    address: str, ca_pem: bytes, token: str | None = None, server_name: str = SERVER_NAME
) -> Any:
    """A synchronous gRPC channel to a secure node server (with `token` as bearer token, if given)."""
    import grpc

    credentials = grpc.ssl_channel_credentials(root_certificates=ca_pem)
    if token is not None:
        credentials = grpc.composite_channel_credentials(
            credentials, grpc.access_token_call_credentials(token)
        )
    return grpc.secure_channel(address, credentials, options=[("grpc.ssl_target_name_override", server_name)])


@dataclass
class LocalApi:
    """The sandbox's Kubernetes API running in this process, and the node servers' security for it.

    For tests and tools that start node servers themselves: `security` gives the
    servers' flags (or ServerConfig fields), `kubeconfig` the users' contexts
    (admin current, viewer, nobody), `token(user)` a user's bearer token.
    """

    server: Any  # KubeApiServer
    store: Any  # ObjectStore
    identities: dict[str, Identity]
    security: NodeSecurity
    kubeconfig: Path
    api_ca_pem: bytes

    @property
    def url(self) -> str:
        return str(self.server.url)

    def token(self, username: str) -> str:
        return self.identities[username].token

    def server_config(self) -> dict[str, str]:
        """The ServerConfig fields of a secure node server."""
        sec = self.security
        return {
            "tls_cert": str(sec.cert_file),
            "tls_key": str(sec.key_file),
            "kubeconfig": str(sec.kubeconfig),
        }

    def serve(self, cluster: Any) -> None:
        """Serve the objects of a model cluster (winspect.emulator.model.Cluster: its nodes, pods,
        services) besides winspect's own."""
        from winspect.sandbox.objects import cluster_objects

        address = f"{self.server.host}:{self.server.port}"
        for obj in cluster_objects(cluster, ca_pem=self.api_ca_pem, apiserver=address):
            self.store.put(obj)

    def channel(self, address: str, username: str | None) -> Any:
        """A gRPC channel to a node server as `username` (None: no credentials)."""
        token = self.token(username) if username is not None else None
        return secure_channel(address, self.security.ca_pem, token)

    def stop(self) -> None:
        self.server.stop()


def start_local_api(directory: Path, objects: Iterable[Obj] = (), *, publish_ca: bool = True) -> LocalApi:
    """Serve `objects` (plus winspect's namespace and CA ConfigMap unless not `publish_ca`) with
    the sandbox's policy."""
    from winspect.sandbox.kubeapi.auth import sandbox_identities, sandbox_policy, sandbox_server_identity
    from winspect.sandbox.kubeapi.server import KubeApiServer
    from winspect.sandbox.kubeapi.store import ObjectStore
    from winspect.sandbox.kubeapi.tls import make_tls

    tls = make_tls(["127.0.0.1"], ["localhost"])
    _, crt, key = tls.write(directory / "api")
    identities = sandbox_identities()
    server_identity = sandbox_server_identity()
    store = ObjectStore(objects)
    api = KubeApiServer(store, sandbox_policy(identities, server_identity), crt, key).start()
    try:
        security = prepare_node_security(directory / "nodes", api.url, tls.ca_pem, server_identity)
        for obj in security.objects() if publish_ca else ():
            store.put(obj)
        kubeconfig = write_kubeconfig(directory / "kubeconfig", api.url, tls.ca_pem, identities)
    except BaseException:
        api.stop()
        raise
    return LocalApi(api, store, {i.user.username: i for i in identities}, security, kubeconfig, tls.ca_pem)
