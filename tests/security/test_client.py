"""The winspect CLI (a process) against a secure winspectserv: it trusts winspect's CA from the
cluster (or --ca-file), sends the kubeconfig user's bearer token (token, tokenFile, exec plugin),
and explains every refusal: RBAC with the kubectl command an admin would run, TLS problems,
credentials, and --insecure used on the wrong side."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml
from support.security import ADMIN, NOBODY, VIEWER, SecureNode, run_cli

from winspect.deploy.pki import make_server_tls


def test_admin_captures_through_tls_with_the_ca_from_the_cluster(node: SecureNode) -> None:
    r = run_cli("capture", "nodes", node.node_name, "-d", "1", "-v", *node.cli_args(ADMIN))
    assert r.returncode == 0, r.stderr
    assert (
        "winspect: TLS to node servers verified against the CA of ConfigMap winspect-system/winspect-ca "
        "(server name winspectserv.winspect-system.svc); bearer token of user sandbox-admin"
    ) in r.stderr
    assert f"{node.node_name}: " in r.stderr and "node cleaned up" in r.stderr
    assert node.clean()


def test_viewer_reads_and_is_told_how_to_get_capture(node: SecureNode) -> None:
    r = run_cli("hns", "networks", "-o", "json", *node.cli_args(VIEWER))
    assert r.returncode == 0, r.stderr
    assert list(json.loads(r.stdout)["results"]) == [node.node_name]
    before = node.calls()
    r = run_cli("capture", "nodes", node.node_name, "-d", "1", *node.cli_args(VIEWER))
    assert r.returncode == 1
    assert (
        f"winspect: {node.node_name}: forbidden by RBAC: user 'sandbox-viewer' may not create nodes/capture "
        f"(API group winspect.io) on node {node.node_name!r}; the ClusterRole winspect-capture grants it; "
        "a cluster admin can grant it with: kubectl create clusterrolebinding "
        "winspect-capture-sandbox-viewer --clusterrole=winspect-capture --user=sandbox-viewer\n"
    ) in r.stderr
    assert node.calls() == before


def test_a_user_without_binding_gets_the_command_for_the_viewer_role(node: SecureNode) -> None:
    r = run_cli("hns", "all", "-o", "json", *node.cli_args(NOBODY))
    assert r.returncode == 1
    error = json.loads(r.stdout)["errors"][node.node_name]
    assert error["code"] == "PERMISSION_DENIED"
    assert error["message"].endswith(
        "kubectl create clusterrolebinding winspect-viewer-sandbox-nobody --clusterrole=winspect-viewer "
        "--user=sandbox-nobody"
    )


def test_a_token_the_cluster_does_not_know(node: SecureNode) -> None:
    kubeconfig = _kubeconfig_with_user(node, {"token": "forged-or-expired"})
    r = run_cli(
        "hns",
        "all",
        "--target",
        node.target,
        "--kubeconfig",
        str(kubeconfig),
        "--ca-file",
        str(node.api.security.ca_file),
    )
    assert r.returncode == 1
    assert (
        f"winspect: {node.node_name}: the Kubernetes API server did not accept the bearer token: it is "
        "invalid, expired or revoked; refresh your kubeconfig credentials"
    ) in r.stderr


def _kubeconfig_with_user(node: SecureNode, user: dict[str, object]) -> Path:
    doc = yaml.safe_load(node.api.kubeconfig.read_text())
    doc["users"] = [{"name": "someone", "user": user}]
    doc["contexts"] = [{"name": "c", "context": {"cluster": doc["clusters"][0]["name"], "user": "someone"}}]
    doc["current-context"] = "c"
    path = node.root / "someone.kubeconfig"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_token_file_and_exec_plugin_credentials_are_sent_as_they_are(node: SecureNode) -> None:
    token_file = node.root / "token"
    token_file.write_text(node.api.token(VIEWER) + "\n")
    kubeconfig = _kubeconfig_with_user(node, {"tokenFile": str(token_file)})
    r = run_cli("hns", "networks", "--target", node.target, "--kubeconfig", str(kubeconfig))
    assert r.returncode == 0, r.stderr

    plugin = node.root / "credential-plugin.py"
    credential = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {"token": node.api.token(VIEWER)},
    }
    plugin.write_text(f"import json\nprint(json.dumps({credential!r}))\n")
    exec_user = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": sys.executable,
            "args": [str(plugin)],
            "interactiveMode": "Never",
        }
    }
    kubeconfig = _kubeconfig_with_user(node, exec_user)
    r = run_cli("hns", "networks", "-o", "json", "--target", node.target, "--kubeconfig", str(kubeconfig))
    assert r.returncode == 0, r.stderr
    assert list(json.loads(r.stdout)["results"]) == [node.node_name]


def test_basic_auth_users_are_told_bearer_tokens_only(node: SecureNode) -> None:
    kubeconfig = _kubeconfig_with_user(node, {"username": "ann", "password": "secret"})
    ca = ["--ca-file", str(node.api.security.ca_file)]  # the API server would refuse basic auth first
    r = run_cli("hns", "all", "--target", node.target, "--kubeconfig", str(kubeconfig), *ca)
    assert r.returncode == 3  # configuration error
    assert r.stderr == (
        "winspect: error: user 'someone' authenticates with a user name and password: node servers accept "
        "bearer tokens only (use a token, an exec plugin or a client certificate)\n"
    )


def test_target_without_credentials_says_where_they_come_from(node: SecureNode) -> None:
    r = run_cli("hns", "all", "--target", node.target)
    assert r.returncode == 3  # configuration error
    assert r.stderr.startswith(
        "winspect: error: node servers need credentials, read from your kubeconfig even with --target: "
        "no Kubernetes configuration found"
    )
    assert "for a server started with `winspectserv --insecure`, use --insecure" in r.stderr


# ---------------------------------------------------------------- trust


def test_ca_file_overrides_and_a_wrong_ca_is_a_tls_error(node: SecureNode) -> None:
    r = run_cli("hns", "networks", *node.cli_args(ADMIN), "--ca-file", str(node.api.security.ca_file))
    assert r.returncode == 0, r.stderr
    other = node.root / "other-ca.crt"
    other.write_bytes(make_server_tls().ca_pem)
    r = run_cli("hns", "networks", "-o", "json", *node.cli_args(ADMIN), "--ca-file", str(other))
    assert r.returncode == 1
    error = json.loads(r.stdout)["errors"][node.node_name]
    assert error["code"] == "TLS_HANDSHAKE_FAILED"
    assert error["message"] == (
        f"the TLS certificate of {node.address} is not signed by winspect's CA (--ca-file {other}): the "
        "server was set up with other certificates (after `winspect rotate-certs`, wait until its pod "
        "restarted), or it is not winspectserv"
    )
    not_pem = node.root / "not-a-ca.crt"
    not_pem.write_text("hello")
    r = run_cli("hns", "networks", *node.cli_args(ADMIN), "--ca-file", str(not_pem))
    assert r.returncode == 3 and f"--ca-file {not_pem} holds no PEM certificate" in r.stderr


@pytest.mark.parametrize("publish_ca", [False])
def test_cluster_without_winspects_ca(tmp_path: Path, loopback_hosts: list[str], publish_ca: bool) -> None:
    node = SecureNode(loopback_hosts[0], tmp_path, publish_ca=publish_ca).start()
    try:
        r = run_cli("hns", "all", *node.cli_args(ADMIN))
        assert r.returncode == 3  # configuration error
        assert (
            "winspect: error: winspect's CA certificate (ConfigMap winspect-system/winspect-ca) is not in "
            f"the cluster {node.api.url}: install winspect with `winspect install` (it creates it), or give "
            "the CA with --ca-file FILE; for servers started with `winspectserv --insecure` use --insecure\n"
        ) == r.stderr
        r = run_cli("hns", "all", *node.cli_args(ADMIN), "--ca-file", str(node.api.security.ca_file))
        assert r.returncode == 0, r.stderr
    finally:
        node.stop()


# ---------------------------------------------------------------- --insecure on one side only


def test_insecure_client_against_a_tls_server(node: SecureNode) -> None:
    r = run_cli("hns", "networks", "--target", node.target, "--insecure")
    assert r.returncode == 1
    assert r.stderr.startswith(
        "winspect: warning: --insecure: plain-text connections without credentials; node servers must run "
        "`winspectserv --insecure` (local development only)\n"
    )
    assert (
        f"winspect: {node.node_name}: cannot connect to {node.address}: it closed the plain-text connection; "
        "winspectserv serves TLS unless started with --insecure: drop --insecure"
    ) in r.stderr


def test_secure_client_against_an_insecure_server(unstarted: SecureNode) -> None:
    unstarted.start(insecure=True, tls_cert=None, tls_key=None, kubeconfig=None)
    r = run_cli("hns", "networks", *unstarted.cli_args(ADMIN))
    assert r.returncode == 1
    assert (
        f"winspect: {unstarted.node_name}: TLS handshake with {unstarted.address} failed: it speaks plain "
        "text (a server started with `winspectserv --insecure`?); reach such a server with winspect "
        "--insecure (local development only)"
    ) in r.stderr
    r = run_cli("hns", "networks", "--target", unstarted.target, "--insecure")
    assert r.returncode == 0, r.stderr
    assert r.stderr.startswith("winspect: warning: --insecure")


def test_server_that_cannot_reach_the_api_server(node: SecureNode) -> None:
    args = node.cli_args(ADMIN)
    ca = node.root / "ca.crt"
    ca.write_bytes(node.api.security.ca_pem)
    node.api.stop()  # the client reads nothing from it with --ca-file; the server cannot review
    r = run_cli("hns", "networks", *args, "--ca-file", str(ca))
    assert r.returncode == 1
    assert (
        f"winspect: {node.node_name}: winspectserv cannot check credentials, so it refuses every call: the "
        "API server is unreachable"
    ) in r.stderr


def test_rotate_certs_works_through_kubernetes_only() -> None:
    r = run_cli("rotate-certs", "--target", "w=127.0.0.1")
    assert r.returncode == 2
    assert "--target talks to nodes directly; rotate-certs works through the Kubernetes API" in r.stderr
    r = run_cli("rotate-certs", "-h")
    assert r.returncode == 0 and "Replace winspect's CA and server certificate" in r.stdout
