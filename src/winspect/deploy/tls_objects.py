"""The certificate objects `winspect install` keeps in the cluster, and whether those there still do.

- Secret winspect-system/winspect-tls (type kubernetes.io/tls): the server
  certificate and key, mounted by the DaemonSet only.
- ConfigMap winspect-system/winspect-ca: the CA certificate and the name the
  certificate carries, which every authenticated user may read (Role
  winspect-client-info) to check node servers against.

Install keeps them while they are consistent and valid for more than
RENEW_BEFORE; otherwise, and on `winspect rotate-certs`, it makes a new CA
and certificate (winspect.deploy.pki) and restarts the DaemonSet by
changing an annotation of its pod template.
"""

from __future__ import annotations

import base64
import datetime
from typing import Any

from winspect.deploy.pki import RENEW_BEFORE, ServerTls, certificate_info, signed_by
from winspect.kube.names import (
    CA_CONFIGMAP,
    CA_KEY,
    MANAGED_LABEL,
    NAMESPACE,
    SERVER_NAME,
    SERVER_NAME_KEY,
    TLS_SECRET,
)

Obj = dict[str, Any]

# On the DaemonSet's pod template: the fingerprint of the certificate the pods should serve.
FINGERPRINT_ANNOTATION = "winspect.io/tls-fingerprint"


def _metadata(name: str) -> Obj:
    key, value = MANAGED_LABEL
    return {"name": name, "namespace": NAMESPACE, "labels": {key: value}}


def secret_object(tls: ServerTls) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _metadata(TLS_SECRET),
        "type": "kubernetes.io/tls",
        "data": {
            "tls.crt": base64.b64encode(tls.cert_pem).decode(),
            "tls.key": base64.b64encode(tls.key_pem).decode(),
        },
    }


def configmap_object(tls: ServerTls) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(CA_CONFIGMAP),
        "data": {CA_KEY: tls.ca_pem.decode(), SERVER_NAME_KEY: SERVER_NAME},
    }


def renewal_reason(
    secret_data: dict[str, str] | None,
    ca_data: dict[str, str] | None,
    now: datetime.datetime | None = None,
) -> str | None:
    """Why new certificates are needed, or None when those in the cluster are good.

    `secret_data` is the Secret's data (base64 values), `ca_data` the ConfigMap's data.
    """
    if secret_data is None and ca_data is None:
        return "none yet"
    if secret_data is None:
        return f"Secret {TLS_SECRET} is missing"
    if ca_data is None:
        return f"ConfigMap {CA_CONFIGMAP} is missing"
    try:
        cert_pem = base64.b64decode(secret_data.get("tls.crt", ""))
        if not secret_data.get("tls.key"):
            return f"Secret {TLS_SECRET} has no tls.key"
        info = certificate_info(cert_pem)
        ca_pem = ca_data.get(CA_KEY, "").encode()
        if not signed_by(cert_pem, ca_pem):
            return (
                f"the certificate of Secret {TLS_SECRET} is not signed by the CA of ConfigMap {CA_CONFIGMAP}"
            )
    except ValueError:
        return f"Secret {TLS_SECRET} or ConfigMap {CA_CONFIGMAP} holds no valid certificate"
    if SERVER_NAME not in info.dns_names:
        return f"the certificate does not name {SERVER_NAME}"
    moment = now or datetime.datetime.now(datetime.timezone.utc)
    if info.not_after - moment < RENEW_BEFORE:
        return f"the certificate expires {info.not_after:%Y-%m-%d}"
    return None


def fingerprint(secret_data: dict[str, str]) -> str:
    return certificate_info(base64.b64decode(secret_data["tls.crt"])).fingerprint
