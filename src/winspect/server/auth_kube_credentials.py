"""winspectserv's own credentials for the Kubernetes API: a token, a token file or an exec plugin.

Token files are read again for every request (the kubelet rotates service
account tokens); an exec plugin's token is kept until it expires or the API
server refuses it. A client certificate alone needs no Authorization header
(it is in the TLS context, see `auth_kube_config`).
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from winspect.server.auth import ReviewUnavailable

EXEC_TIMEOUT = 30.0  # an exec credential plugin's run (kubelogin & co. may call an identity provider)
EXEC_API_VERSIONS = (
    "client.authentication.k8s.io/v1",
    "client.authentication.k8s.io/v1beta1",
    "client.authentication.k8s.io/v1alpha1",
)


class AuthSetupError(ValueError):
    """winspectserv has no usable credentials for the Kubernetes API (refuses to start)."""


def kubeconfig_file(base: Path, name: object) -> Path:
    """A file named in a kubeconfig: relative to the kubeconfig's directory, `~` expanded."""
    return base / Path(str(name)).expanduser()


class Credentials(Protocol):
    """What goes in the Authorization header of a review request."""

    renewable: bool  # worth asking again (renew=True) after a 401

    def authorization(self, renew: bool = False) -> str | None: ...


class NoToken:
    """A client certificate only (it is in the TLS context)."""

    renewable = False

    def authorization(self, renew: bool = False) -> str | None:
        return None


@dataclass(frozen=True)
class StaticToken:
    token: str
    renewable = False

    def authorization(self, renew: bool = False) -> str | None:
        return f"Bearer {self.token}"


@dataclass(frozen=True)
class TokenFile:
    """A token file, read for every request: the kubelet rotates service account tokens in place."""

    path: Path
    renewable = False

    def read(self) -> str:
        """The token; ValueError saying why there is none."""
        try:
            token = self.path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise ValueError(f"cannot read the token file {self.path}: {why}") from None
        if not token:
            raise ValueError(f"the token file {self.path} is empty")
        return token

    def authorization(self, renew: bool = False) -> str | None:
        try:
            return f"Bearer {self.read()}"
        except ValueError as exc:
            raise ReviewUnavailable(f"winspectserv's own credentials are unusable ({exc})") from None

    def check(self) -> TokenFile:
        """This token file, when it can be read now (AuthSetupError otherwise)."""
        try:
            self.read()
        except ValueError as exc:
            raise AuthSetupError(str(exc)) from None
        return self


def _expiry(text: object) -> float | None:
    """An RFC 3339 expirationTimestamp as a time.time() value; None when absent or unreadable."""
    if not isinstance(text, str) or not text:
        return None
    text = text.strip().replace("Z", "+00:00").replace("z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:  # fromisoformat before 3.11 takes 3 or 6 digits of fraction only: drop it
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = head + rest[digits:]
    try:
        stamp = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=datetime.timezone.utc)
    return stamp.timestamp()


class ExecPlugin:
    """An exec credential plugin (client.authentication.k8s.io), run without a shell or a terminal.

    Its token is kept until 10 s before its expirationTimestamp (or, without one,
    until the API server answers 401); one run at a time for all threads."""

    renewable = True

    def __init__(self, spec: dict[str, Any], base: Path) -> None:
        self.api_version = str(spec.get("apiVersion") or "")
        if self.api_version not in EXEC_API_VERSIONS:
            raise AuthSetupError(
                f"exec plugin apiVersion {self.api_version!r} is not supported (use one of "
                f"{', '.join(EXEC_API_VERSIONS)})"
            )
        command = spec.get("command")
        args = spec.get("args") or []
        env = spec.get("env") or []
        if not isinstance(command, str) or not command:
            raise AuthSetupError("exec plugin without a command")
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise AuthSetupError("exec plugin args must be a list of strings")
        if not isinstance(env, list) or not all(
            isinstance(e, dict) and isinstance(e.get("name"), str) and isinstance(e.get("value"), str)
            for e in env
        ):
            raise AuthSetupError("exec plugin env must be a list of {name, value} strings")
        # kubectl: a relative command with a path separator is relative to the kubeconfig's directory.
        if ("/" in command or os.sep in command) and not Path(command).is_absolute():
            command = str(kubeconfig_file(base, command))
        self.argv = [command, *args]
        self.env = {str(e["name"]): str(e["value"]) for e in env}
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires: float | None = None

    def authorization(self, renew: bool = False) -> str | None:
        with self._lock:
            fresh = self._expires is None or time.time() < self._expires - 10
            if renew or self._token is None or not fresh:
                self._token, self._expires = self._run()
            return f"Bearer {self._token}"

    def _run(self) -> tuple[str, float | None]:
        name = Path(self.argv[0]).name
        info = {"apiVersion": self.api_version, "kind": "ExecCredential", "spec": {"interactive": False}}
        env = {**os.environ, **self.env, "KUBERNETES_EXEC_INFO": json.dumps(info)}

        def unusable(why: str) -> ReviewUnavailable:
            return ReviewUnavailable(
                f"winspectserv's own credentials are unusable (exec plugin {name}: {why})"
            )

        try:
            done = subprocess.run(  # the kubeconfig's own command, as kubectl runs it
                self.argv,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=EXEC_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise unusable(f"no answer within {EXEC_TIMEOUT:g}s") from None
        except OSError as exc:
            raise unusable(str(exc.strerror or exc)) from None
        if done.returncode != 0:
            stderr = " ".join(done.stderr.decode("utf-8", "replace").split())[:300]
            raise unusable(f"exit status {done.returncode}: {stderr}")
        try:
            status = json.loads(done.stdout).get("status") or {}
            token = status.get("token")
        except (ValueError, AttributeError):
            raise unusable("its output is not an ExecCredential") from None
        if not isinstance(token, str) or not token:
            raise unusable(
                "no token in its ExecCredential (client certificates from exec plugins are not supported)"
            )
        return token, _expiry(status.get("expirationTimestamp"))
