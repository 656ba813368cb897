"""kubeconfig resolution as kubectl does it, producing a lightkube configuration.

Order: --kubeconfig (that file only, it must exist); else the files of
KUBECONFIG (os.pathsep separated, missing ones skipped) merged so that the
first file to define a cluster, user or context name wins, and the first
file with a current-context sets it; else ~/.kube/config; else the
in-cluster service account. Relative file paths are resolved against the
file that names them, before merging.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from winspect.errors import ConfigError, UsageError
from winspect.incluster import SERVICE_ACCOUNT_DIR

if TYPE_CHECKING:
    from lightkube.config.kubeconfig import SingleConfig

DEFAULT_KUBECONFIG = "~/.kube/config"

# Keys holding file paths, per section, that kubectl resolves relative to their file.
_PATH_KEYS = {
    "cluster": ("certificate-authority",),
    "user": ("client-certificate", "client-key", "tokenFile"),
}

NO_CONFIG_HELP = (
    "no Kubernetes configuration found: use --kubeconfig FILE, set KUBECONFIG, create ~/.kube/config, "
    "or reach nodes directly with --target NAME=HOST[:PORT]"
)


def _load_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read kubeconfig {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(f"kubeconfig {path} is not valid YAML{where}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"kubeconfig {path} is not a kubeconfig (expected a mapping at the top level)")
    return data


def _absolutize(entry: dict[str, Any], section: str, base: Path) -> None:
    body = entry.get(section)
    if not isinstance(body, dict):
        return
    for key in _PATH_KEYS.get(section, ()):
        value = body.get(key)
        if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
            body[key] = str(base / value)
        elif isinstance(value, str) and value.startswith("~"):
            body[key] = str(Path(value).expanduser())
    exec_ = body.get("exec") if section == "user" else None
    if isinstance(exec_, dict):
        command = exec_.get("command")
        # kubectl: a relative command containing a path separator is relative to the file.
        if isinstance(command, str) and os.sep in command and not Path(command).is_absolute():
            exec_["command"] = str(base / command)


def merge_kubeconfigs(docs: list[tuple[Path, dict[str, Any]]]) -> dict[str, Any]:
    """Merge kubeconfig documents kubectl-style: the first to set a name or current-context wins."""
    merged: dict[str, Any] = {"clusters": [], "users": [], "contexts": [], "current-context": None}
    seen: dict[str, set[str]] = {"clusters": set(), "users": set(), "contexts": set()}
    for path, doc in docs:
        base = path.parent
        for plural, singular in (("clusters", "cluster"), ("users", "user"), ("contexts", "context")):
            entries = doc.get(plural) or []
            if not isinstance(entries, list):
                raise ConfigError(f"kubeconfig {path}: '{plural}' must be a list")
            for entry in entries:
                if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                    raise ConfigError(f"kubeconfig {path}: every entry of '{plural}' needs a name")
                if entry["name"] in seen[plural]:
                    continue
                seen[plural].add(entry["name"])
                entry = {**entry, singular: dict(entry.get(singular) or {})}
                _absolutize(entry, singular, base)
                merged[plural].append(entry)
        if merged["current-context"] is None and doc.get("current-context"):
            merged["current-context"] = doc["current-context"]
    return merged


@dataclass
class ResolvedConfig:
    """The configuration chosen for this run."""

    config: SingleConfig
    namespace: str
    source: str  # where it came from, for -v and error messages

    @property
    def server(self) -> str:
        return str(self.config.cluster.server)

    @property
    def user_name(self) -> str:
        return str(self.config.context.user or "")


def kubeconfig_files(explicit: str | None, environ: dict[str, str] | None = None) -> list[Path]:
    """The kubeconfig files to merge, in precedence order (possibly empty)."""
    env = os.environ if environ is None else environ
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise UsageError(f"--kubeconfig {explicit}: no such file")
        return [path]
    if env.get("KUBECONFIG"):
        files = [Path(p).expanduser() for p in env["KUBECONFIG"].split(os.pathsep) if p]
        return [p for p in dict.fromkeys(files) if p.is_file()]
    default = Path(DEFAULT_KUBECONFIG).expanduser()
    return [default] if default.is_file() else []


def _fix_exec_api_version(user: dict[str, Any]) -> None:
    # lightkube knows v1alpha1/v1beta1 only; plugins answer v1 with the same
    # status.token, so ask for v1beta1 (what kubelogin and most plugins support).
    exec_ = user.get("exec")
    if isinstance(exec_, dict) and exec_.get("apiVersion") == "client.authentication.k8s.io/v1":
        exec_["apiVersion"] = "client.authentication.k8s.io/v1beta1"


def resolve_config(
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
    *,
    environ: dict[str, str] | None = None,
    service_account_dir: str = SERVICE_ACCOUNT_DIR,
) -> ResolvedConfig:
    """The cluster, user and namespace to use, as kubectl would choose them."""
    env = dict(os.environ) if environ is None else environ
    files = kubeconfig_files(kubeconfig, env)
    if files:
        return _from_files(files, context, namespace)
    sa = Path(service_account_dir)
    if env.get("KUBERNETES_SERVICE_HOST") and (sa / "token").is_file():
        return _in_cluster(sa, env, namespace)
    named = [p for p in env.get("KUBECONFIG", "").split(os.pathsep) if p]
    if named:
        which = "file" if len(named) == 1 else "files"
        raise ConfigError(
            f"KUBECONFIG names the {which} {', '.join(named)}: no such {which}; point KUBECONFIG at your "
            "kubeconfig, use --kubeconfig FILE, or reach nodes directly with --target NAME=HOST[:PORT]"
        )
    raise ConfigError(NO_CONFIG_HELP)


def _in_cluster(sa: Path, env: dict[str, str], namespace: str | None) -> ResolvedConfig:
    """The pod's service account and the API server of KUBERNETES_SERVICE_HOST/PORT."""
    from lightkube.config.kubeconfig import KubeConfig

    host, port = env["KUBERNETES_SERVICE_HOST"], env.get("KUBERNETES_SERVICE_PORT", "443")
    if ":" in host:
        host = f"[{host}]"
    ns_file = sa / "namespace"
    sa_namespace = ns_file.read_text().strip() if ns_file.is_file() else "default"
    kc = KubeConfig.from_dict(
        {
            "clusters": [
                {
                    "name": "in-cluster",
                    "cluster": {
                        "server": f"https://{host}:{port}",
                        "certificate-authority": str(sa / "ca.crt"),
                    },
                }
            ],
            "users": [{"name": "service-account", "user": {"tokenFile": str(sa / "token")}}],
            "contexts": [
                {
                    "name": "in-cluster",
                    "context": {
                        "cluster": "in-cluster",
                        "user": "service-account",
                        "namespace": sa_namespace,
                    },
                }
            ],
            "current-context": "in-cluster",
        }
    )
    single = kc.get()
    assert single is not None
    return ResolvedConfig(single, namespace or sa_namespace, "in-cluster service account")


def _from_files(files: list[Path], context: str | None, namespace: str | None) -> ResolvedConfig:
    """The chosen context of the merged kubeconfig files, checked before lightkube reads it."""
    from lightkube.config.kubeconfig import KubeConfig, SingleConfig
    from lightkube.config.models import User
    from lightkube.core.exceptions import ConfigError as LightkubeConfigError

    merged = merge_kubeconfigs([(p, _load_yaml(p)) for p in files])
    source = ", ".join(str(p) for p in files)
    for entry in merged["users"]:
        _fix_exec_api_version(entry["user"])
    context_name = context or merged["current-context"]
    _check_context(merged, context_name, explicit=bool(context), source=source)
    try:
        kc = KubeConfig.from_dict(merged, fname=files[0])
        single = kc.get(context_name)
    except (LightkubeConfigError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"kubeconfig {source}: {exc}") from None
    assert single is not None
    if single.user is None:  # lightkube needs a user object even without credentials
        single = SingleConfig(single.context_name, single.context, single.cluster, User(), single.fname)
    return ResolvedConfig(single, namespace or single.context.namespace or "default", source)


def _check_context(merged: dict[str, Any], context_name: str | None, *, explicit: bool, source: str) -> None:
    """ConfigError unless the context exists and names a cluster (and user) the kubeconfig has."""
    contexts = {c["name"]: c for c in merged["contexts"]}
    if not context_name:
        raise ConfigError(f"kubeconfig {source} sets no current-context: choose one with --context NAME")
    if context_name not in contexts:
        known = ", ".join(sorted(contexts)) or "none"
        flag = "--context" if explicit else "current-context"
        raise ConfigError(f"{flag} {context_name!r} is not in kubeconfig {source} (contexts: {known})")
    ctx = contexts[context_name]["context"]
    clusters = {c["name"] for c in merged["clusters"]}
    users = {u["name"] for u in merged["users"]}
    if ctx.get("cluster") not in clusters:
        raise ConfigError(
            f"context {context_name!r} names cluster {ctx.get('cluster')!r}, not in kubeconfig {source}"
        )
    if ctx.get("user") and ctx["user"] not in users:
        raise ConfigError(f"context {context_name!r} names user {ctx['user']!r}, not in kubeconfig {source}")


def authorization_header(auth: Any, server: str) -> str:
    """The Authorization header lightkube's auth (token, tokenFile, exec plugin...) puts on a request
    to `server`; "" without auth. Runs an exec plugin."""
    if auth is None:
        return ""
    import httpx2

    request = httpx2.Request("GET", server)
    flow = auth.sync_auth_flow(request)
    sent = next(flow)
    flow.close()
    return str(sent.headers.get("Authorization", ""))
