"""Helpers of the sandbox tests: a client of the sandbox Kubernetes API, and kubectl against it."""

from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
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


def kubectl(kubeconfig: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The machine's kubectl with `kubeconfig`, HOME and its cache in `home`."""
    from support.machine import require_tool

    exe = require_tool("kubectl", "kubectl", also=("/usr/bin",))
    env = {**os.environ, "HOME": str(home), "KUBECONFIG": ""}
    return subprocess.run(
        [exe, "--kubeconfig", str(kubeconfig), "--cache-dir", str(home / "kubectl-cache"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def table(text: str) -> list[dict[str, str]]:
    """Rows of kubectl's column output keyed by header (columns cut at the header's offsets)."""
    lines = text.rstrip("\n").splitlines()
    header = lines[0]
    starts = [m.start() for m in re.finditer(r"(?:^|(?<=  ))\S", header)]
    names = [header[s:e].strip() for s, e in zip(starts, [*starts[1:], None], strict=True)]
    return [
        {n: line[s:e].strip() for n, s, e in zip(names, starts, [*starts[1:], None], strict=True)}
        for line in lines[1:]
    ]
