"""The kubeconfig that points clients at the sandbox API, one context per sandbox user."""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from winspect.sandbox.kubeapi.auth import ADMIN_USER, Identity

CLUSTER = "winspect-sandbox"


def context_name(username: str) -> str:
    """`winspect-sandbox` for the admin (the current context), `winspect-sandbox-<role>` for others."""
    if username == ADMIN_USER:
        return CLUSTER
    return f"{CLUSTER}-{username.removeprefix('sandbox-')}"


def kubeconfig(server: str, ca_pem: bytes, identities: Sequence[Identity]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [
            {
                "name": CLUSTER,
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(ca_pem).decode(),
                },
            }
        ],
        "users": [{"name": i.user.username, "user": {"token": i.token}} for i in identities],
        "contexts": [
            {
                "name": context_name(i.user.username),
                "context": {"cluster": CLUSTER, "user": i.user.username, "namespace": i.namespace},
            }
            for i in identities
        ],
        "current-context": context_name(identities[0].user.username),
    }


def write_kubeconfig(path: Path, server: str, ca_pem: bytes, identities: Sequence[Identity]) -> Path:
    """Write the kubeconfig (mode 0600: it holds bearer tokens); the first identity is current."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(kubeconfig(server, ca_pem, identities), sort_keys=False)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path
