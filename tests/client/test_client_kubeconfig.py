"""kubeconfig resolution and merging as kubectl does it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from winspect.errors import ConfigError, UsageError
from winspect.kube.kubeconfig import kubeconfig_files, merge_kubeconfigs, resolve_config


def write(path: Path, doc: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc))
    return path


def config(
    cluster: str,
    server: str,
    user: str,
    ctx: str,
    *,
    current: str | None = None,
    namespace: str | None = None,
    user_body: dict[str, Any] | None = None,
    cluster_body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    context: dict[str, Any] = {"cluster": cluster, "user": user}
    if namespace:
        context["namespace"] = namespace
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {"server": server, **(cluster_body or {})}}],
        "users": [{"name": user, "user": user_body or {"token": f"token-{user}"}}],
        "contexts": [{"name": ctx, "context": context}],
    }
    if current:
        doc["current-context"] = current
    return doc


def test_kubeconfig_env_files_merge_first_wins(tmp_path: Path) -> None:
    a = write(tmp_path / "a", config("c1", "https://a.example:6443", "u1", "ctx-a", current="ctx-a"))
    b_doc = config("c1", "https://b.example:6443", "u1", "ctx-a", current="ctx-b")
    b_doc["clusters"].append({"name": "c2", "cluster": {"server": "https://c2.example:6443"}})
    b_doc["contexts"].append(
        {"name": "ctx-b", "context": {"cluster": "c2", "user": "u1", "namespace": "shop"}}
    )
    b = write(tmp_path / "b", b_doc)
    env = {"KUBECONFIG": os.pathsep.join([str(a), str(tmp_path / "missing"), str(b)])}

    resolved = resolve_config(None, None, None, environ=env)
    # a's current-context and a's c1 win over b's.
    assert resolved.config.context_name == "ctx-a"
    assert resolved.server == "https://a.example:6443"
    assert resolved.namespace == "default"
    assert resolved.source == f"{a}, {b}"

    # a context only b defines is usable, with b's namespace; -n overrides it.
    resolved = resolve_config(None, "ctx-b", None, environ=env)
    assert resolved.server == "https://c2.example:6443"
    assert resolved.namespace == "shop"
    assert resolve_config(None, "ctx-b", "other", environ=env).namespace == "other"


def test_current_context_from_a_later_file(tmp_path: Path) -> None:
    a = write(tmp_path / "a", config("c1", "https://a.example", "u1", "ctx-a"))
    b = write(tmp_path / "b", {"current-context": "ctx-a"})
    resolved = resolve_config(None, None, None, environ={"KUBECONFIG": f"{a}{os.pathsep}{b}"})
    assert resolved.config.context_name == "ctx-a"


def test_explicit_kubeconfig_is_the_only_file(tmp_path: Path) -> None:
    a = write(tmp_path / "a", config("c1", "https://a.example", "u1", "ctx-a", current="ctx-a"))
    b = write(tmp_path / "b", config("c2", "https://b.example", "u2", "ctx-b", current="ctx-b"))
    assert kubeconfig_files(str(b), {"KUBECONFIG": str(a)}) == [b]
    assert resolve_config(str(b), None, None, environ={"KUBECONFIG": str(a)}).server == "https://b.example"
    with pytest.raises(UsageError, match=r"--kubeconfig .*nope: no such file"):
        kubeconfig_files(str(tmp_path / "nope"), {})


def test_default_file_is_home_kube_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    path = write(tmp_path / ".kube" / "config", config("c", "https://home.example", "u", "x", current="x"))
    assert kubeconfig_files(None, {}) == [path]
    assert resolve_config(None, None, None, environ={}).server == "https://home.example"


def test_relative_paths_resolve_against_their_own_file(tmp_path: Path) -> None:
    a = write(
        tmp_path / "one" / "a",
        config(
            "c1",
            "https://a.example",
            "u1",
            "ctx-a",
            current="ctx-a",
            cluster_body={"certificate-authority": "ca.crt"},
            user_body={"client-certificate": "certs/u.crt", "client-key": "/abs/u.key"},
        ),
    )
    b_doc = {"users": [{"name": "u2", "user": {"tokenFile": "tok"}}]}
    b = write(tmp_path / "two" / "b", b_doc)
    merged = merge_kubeconfigs([(a, yaml.safe_load(a.read_text())), (b, b_doc)])
    assert merged["clusters"][0]["cluster"]["certificate-authority"] == str(tmp_path / "one" / "ca.crt")
    assert merged["users"][0]["user"]["client-certificate"] == str(tmp_path / "one" / "certs" / "u.crt")
    assert merged["users"][0]["user"]["client-key"] == "/abs/u.key"
    assert merged["users"][1]["user"]["tokenFile"] == str(tmp_path / "two" / "tok")


def test_exec_plugin_v1_is_asked_as_v1beta1(tmp_path: Path) -> None:
    exec_user = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": "kubelogin",
            "args": ["get-token"],
        }
    }
    a = write(tmp_path / "a", config("c", "https://a.example", "u", "x", current="x", user_body=exec_user))
    resolved = resolve_config(str(a), None, None, environ={})
    assert resolved.config.user is not None and resolved.config.user.exec is not None
    assert resolved.config.user.exec.apiVersion == "client.authentication.k8s.io/v1beta1"
    assert resolved.config.user.exec.command == "kubelogin"


def test_in_cluster_service_account(tmp_path: Path) -> None:
    sa = tmp_path / "sa"
    sa.mkdir()
    (sa / "token").write_text("sa-token")
    (sa / "namespace").write_text("kube-system")
    (sa / "ca.crt").write_text("")
    env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443", "HOME": str(tmp_path)}
    resolved = resolve_config(None, None, None, environ=env, service_account_dir=str(sa))
    assert resolved.server == "https://10.0.0.1:443"
    assert resolved.namespace == "kube-system"
    assert resolved.source == "in-cluster service account"
    assert resolved.config.user is not None and resolved.config.user.token_file == str(sa / "token")


def test_no_configuration_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ConfigError, match=r"no Kubernetes configuration found: .*--target NAME=HOST"):
        resolve_config(None, None, None, environ={}, service_account_dir=str(tmp_path / "none"))


def test_bad_contexts(tmp_path: Path) -> None:
    a = write(tmp_path / "a", config("c", "https://a.example", "u", "x"))
    with pytest.raises(ConfigError, match="sets no current-context: choose one with --context NAME"):
        resolve_config(str(a), None, None, environ={})
    with pytest.raises(ConfigError, match=r"--context 'nope' is not in kubeconfig .* \(contexts: x\)"):
        resolve_config(str(a), "nope", None, environ={})
    doc = config("c", "https://a.example", "u", "x", current="x")
    doc["contexts"][0]["context"]["cluster"] = "gone"
    b = write(tmp_path / "b", doc)
    with pytest.raises(ConfigError, match="context 'x' names cluster 'gone', not in kubeconfig"):
        resolve_config(str(b), None, None, environ={})


def test_not_yaml(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.write_text("clusters: [\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        resolve_config(str(bad), None, None, environ={})
