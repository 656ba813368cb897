"""Helpers of the sandbox tests: a client of the sandbox Kubernetes API."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from winspect.emulator.model import Cluster
from winspect.sandbox.kubeapi.auth import Identity

# Addresses only appear in the API objects here: nothing listens on them.
WINDOWS_ADDRESSES = ["127.0.77.1", "127.0.77.2", "127.0.77.3"]


@dataclass
class Api:
    url: str
    cluster: Cluster
    identities: dict[str, Identity]
    kubeconfig: Path
    ca_file: Path
    context: ssl.SSLContext

    def token(self, user: str) -> str:
        return self.identities[user].token

    def request(
        self,
        path: str,
        user: str | None = "sandbox-admin",
        *,
        token: str | None = None,
        method: str = "GET",
        accept: str | None = None,
        body: Any = None,
        raw: bool = False,
    ) -> tuple[int, Any]:
        headers = {}
        tok = token if token is not None else (self.token(user) if user else None)
        if tok is not None:
            headers["Authorization"] = f"Bearer {tok}"
        if accept:
            headers["Accept"] = accept
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, context=self.context, timeout=10) as resp:
                data, code, ctype = resp.read(), resp.status, resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as e:
            data, code, ctype = e.read(), e.code, e.headers.get("Content-Type", "")
        if ctype.startswith("application/json") and not raw:
            return code, json.loads(data)
        return code, data.decode()

    def get(self, path: str, user: str | None = "sandbox-admin", **kw: Any) -> Any:
        code, body = self.request(path, user, **kw)
        assert code == 200, (code, body)
        return body
