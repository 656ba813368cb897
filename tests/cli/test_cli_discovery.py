"""Discovery through a Kubernetes API (the sandbox API over TLS, bearer tokens, RBAC): node and pod
resolution, and every error a user can meet, each with its message and exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from support.cli import KubeApi, run_inprocess


def kube(api: KubeApi, *args: str, context: str | None = None) -> tuple[int, str, str]:
    extra = ["--context", context] if context else []
    result = run_inprocess(*args, "--kubeconfig", str(api.kubeconfig), *extra, "--timeout", "5")
    return result.exit_code, result.stdout, result.stderr


def test_all_windows_nodes_are_dialled_at_their_internal_ip(kube_api: KubeApi) -> None:
    # Nothing listens there yet: each node fails with its own address, the run goes on for both.
    code, out, err = kube(kube_api, "hns", "networks", "-o", "json", "-v")
    doc = json.loads(out)
    assert set(doc["errors"]) == {"win-node-1", "win-node-2", "win-noip"}  # not the Linux node
    assert doc["errors"]["win-noip"]["code"] == "NO_INTERNAL_IP"
    assert "winspect: win-noip: node has no InternalIP address in its status" in err
    for name, host in kube_api.node_hosts.items():
        assert doc["errors"][name]["address"] == f"{host}:50051"
        assert f"winspect: {name}: cannot connect to {host}:50051" in err
    assert "context 'winspect-sandbox'" in err and f"API server {kube_api.url}" in err
    assert code == 1


def test_port_flag_changes_the_port_dialled(kube_api: KubeApi) -> None:
    _, out, _ = kube(kube_api, "hns", "networks", "-o", "json", "--nodes", "win-node-1", "--port", "6000")
    host = kube_api.node_hosts["win-node-1"]
    assert json.loads(out)["errors"] == {
        "win-node-1": {
            "address": f"{host}:6000",
            "code": "UNAVAILABLE",
            "message": json.loads(out)["errors"]["win-node-1"]["message"],
        }
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["hns", "all", "--nodes", "win-node-3"],
            "node 'win-node-3' not found; did you mean win-node-1, win-node-2, win-noip?",
        ),
        (
            ["capture", "nodes", "win1", "-d", "1"],
            "node 'win1' not found; the Windows nodes are win-node-1, win-node-2, win-noip\n",
        ),
        (
            ["counter", "--nodes", "lin-node-1"],
            "node 'lin-node-1' is not a Windows node (kubernetes.io/os=linux); "
            "winspect inspects Windows nodes only",
        ),
        (
            ["capture", "pods", "web-2"],
            "pod 'web-2' not found in namespace 'default'; did you mean web-0, web-1",
        ),
        (
            ["capture", "pods", "zzz"],
            "pod 'zzz' not found in namespace 'default' (use -n NAMESPACE, NAMESPACE/POD, "
            "or -A to search all namespaces)",
        ),
        (
            ["capture", "pods", "linux-0"],
            "pod default/linux-0 runs on the linux node 'lin-node-1'; "
            "winspect inspects pods on Windows nodes only",
        ),
        (
            ["capture", "pods", "pending-0"],
            "pod default/pending-0 is not scheduled on a node yet (phase Pending)",
        ),
        (["vfp-counter", "-p", "starting-0"], "pod default/starting-0 has no IP yet (phase Pending)"),
        (
            ["capture", "pods", "web-0", "-A"],
            "pod name 'web-0' is in several namespaces (default/web-0, web/web-0): write NAMESPACE/POD",
        ),
        (["vfp-counter", "-p", "api-0"], "pod 'api-0' not found in namespace 'default'"),
    ],
)
def test_bad_names_are_usage_errors_with_specific_messages(
    kube_api: KubeApi, args: list[str], message: str
) -> None:
    code, out, err = kube(kube_api, *args)
    assert message in err
    assert err.startswith("winspect: error: ")
    assert code == 2 and out == ""


@pytest.mark.parametrize(
    "args",
    [
        ["capture", "nodes", "win-noip", "-d", "1"],
        ["capture", "pods", "noip-node-pod"],
        ["counter", "--nodes", "win-noip", "-o", "json"],
    ],
)
def test_node_without_internal_ip_is_a_failed_node(kube_api: KubeApi, args: list[str]) -> None:
    code, out, err = kube(kube_api, *args)
    assert code == 1
    assert err.splitlines()[0] == (
        "winspect: win-noip: node has no InternalIP address in its status; winspect dials nodes at their "
        "InternalIP (give its address by hand with --target NAME=HOST)"
    )
    if "json" in args:
        assert json.loads(out)["errors"]["win-noip"]["code"] == "NO_INTERNAL_IP"


def test_pods_resolve_in_their_namespace_and_only_their_nodes_are_used(kube_api: KubeApi) -> None:
    host2 = kube_api.node_hosts["win-node-2"]
    # -n, NAMESPACE/POD and -A all find shop/api-0; only win-node-2 is contacted.
    for args in (
        ["-n", "shop", "vfp-counter", "-p", "api-0"],
        ["vfp-counter", "-p", "shop/api-0"],
        ["vfp-counter", "-p", "api-0", "-A"],
    ):
        code, out, err = kube(kube_api, *args, "-o", "json", "-v")
        doc = json.loads(out)
        assert doc["pod"] == {"namespace": "shop", "name": "api-0", "ip": "10.224.1.80"}
        assert (
            list(doc["errors"]) == ["win-node-2"]
            and doc["errors"]["win-node-2"]["address"] == f"{host2}:50051"
        )
        assert "pod shop/api-0 (10.224.1.80) on node win-node-2" in err
        assert code == 1


def test_context_namespace_is_the_default(kube_api: KubeApi) -> None:
    # The viewer context's namespace is "web": web-0 there runs on win-node-2.
    _, out, _ = kube(kube_api, "vfp-counter", "-p", "web-0", "-o", "json", context="winspect-sandbox-viewer")
    assert json.loads(out)["pod"] == {"namespace": "web", "name": "web-0", "ip": "10.224.1.81"}
    # the pod as vfp-counter's argument, as kubectl takes it
    _, out, _ = kube(kube_api, "vfp-counter", "shop/api-0", "-o", "json")
    assert json.loads(out)["pod"] == {"namespace": "shop", "name": "api-0", "ip": "10.224.1.80"}


def test_expired_or_invalid_credentials(kube_api: KubeApi) -> None:
    code, out, err = kube(kube_api, "hns", "all", context="stale")
    assert code == 3 and out == ""
    assert err.strip() == (
        f"winspect: error: the Kubernetes API server {kube_api.url} rejected the credentials of user 'stale' "
        "(401 Unauthorized): the token or client certificate is invalid or expired; refresh your kubeconfig "
        "credentials"
    )


def test_rbac_forbidden(kube_api: KubeApi) -> None:
    code, _, err = kube(kube_api, "hns", "all", context="winspect-sandbox-nobody")
    assert code == 3
    assert err.startswith(
        "winspect: error: forbidden by RBAC: user 'sandbox-nobody' may not list nodes (403 Forbidden"
    )
    assert "winspect needs list on nodes and pods" in err and len(err.strip().splitlines()) == 1
    # viewer may list nodes and pods of "web" only
    code, _, err = kube(
        kube_api, "-n", "default", "capture", "pods", "web-0", context="winspect-sandbox-viewer"
    )
    assert code == 3
    assert "forbidden by RBAC: user 'sandbox-viewer' may not list pods in namespace 'default'" in err


def test_api_server_unreachable(kube_api: KubeApi) -> None:
    kube_api.stop()
    code, out, err = kube(kube_api, "hns", "all")
    assert code == 3 and out == ""
    assert err.strip() == (
        f"winspect: error: cannot reach the Kubernetes API server {kube_api.url}: connection refused "
        "(is the API server running and the address right?)"
    )


def test_untrusted_server_certificate(kube_api: KubeApi, tmp_path: Path) -> None:
    doc = yaml.safe_load(kube_api.kubeconfig.read_text())
    import base64

    from winspect.sandbox.kubeapi.tls import make_tls

    other_ca = make_tls(["127.0.0.1"], []).ca_pem
    doc["clusters"][0]["cluster"]["certificate-authority-data"] = base64.b64encode(other_ca).decode()
    path = tmp_path / "other-ca"
    path.write_text(yaml.safe_dump(doc))
    result = run_inprocess("hns", "all", "--kubeconfig", str(path))
    assert result.exit_code == 3
    assert "TLS verification of the server certificate failed" in result.stderr


def test_kubeconfig_env_merging_reaches_the_api(kube_api: KubeApi, tmp_path: Path) -> None:
    # The users live in the real file; a first file only picks the context (kubectl merge rules).
    first = tmp_path / "first"
    first.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "current-context": "stale"}))
    result = run_inprocess("hns", "all", env={"KUBECONFIG": f"{first}:{kube_api.kubeconfig}"})
    assert result.stderr == (
        f"winspect: error: the Kubernetes API server {kube_api.url} rejected the credentials of user "
        "'stale' (401 Unauthorized): the token or client certificate is invalid or expired; refresh your "
        "kubeconfig credentials\n"
    )
    assert result.exit_code == 3


def test_exec_credential_plugin(kube_api: KubeApi, tmp_path: Path) -> None:
    doc = yaml.safe_load(kube_api.kubeconfig.read_text())
    admin = next(u for u in doc["users"] if u["name"] == "sandbox-admin")
    token = admin["user"]["token"]
    plugin = tmp_path / "plugin.py"
    plugin.write_text(
        "import json\nprint(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1beta1', "
        f"'kind': 'ExecCredential', 'status': {{'token': {token!r}}}}}))\n"
    )
    import sys

    admin["user"] = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": sys.executable,
            "args": [str(plugin)],
        }
    }
    path = tmp_path / "exec-kubeconfig"
    path.write_text(yaml.safe_dump(doc))
    result = run_inprocess("hns", "all", "--nodes", "win-node-3", "--kubeconfig", str(path))
    assert "node 'win-node-3' not found; did you mean" in result.stderr  # listed nodes: authenticated
    admin["user"] = {
        "exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": "/nonexistent/kubelogin"}
    }
    path.write_text(yaml.safe_dump(doc))
    result = run_inprocess("hns", "all", "--kubeconfig", str(path))
    assert result.exit_code == 3
    assert "credentials of user 'sandbox-admin' cannot be used" in result.stderr
    assert "/nonexistent/kubelogin" in result.stderr


def test_client_certificate_that_cannot_be_read(kube_api: KubeApi, tmp_path: Path) -> None:
    doc = yaml.safe_load(kube_api.kubeconfig.read_text())
    admin = next(u for u in doc["users"] if u["name"] == "sandbox-admin")
    admin["user"] = {"client-certificate": "certs/missing.crt", "client-key": "certs/missing.key"}
    path = tmp_path / "cert-kubeconfig"
    path.write_text(yaml.safe_dump(doc))
    result = run_inprocess("hns", "all", "--kubeconfig", str(path))
    assert result.exit_code == 3
    # the relative path is resolved against the kubeconfig's directory, as kubectl does
    missing = f"{tmp_path / 'certs' / 'missing.crt'}, {tmp_path / 'certs' / 'missing.key'}"
    assert f"kubeconfig {path}: cannot read {missing} (No such file or directory)" in result.stderr
    assert "Traceback" not in result.output


def complete(words: str) -> list[str]:
    from support.cli import run_process

    cword = str(len(words.split()) - (0 if words.endswith(" ") else 1))
    result = run_process(
        env={"_WINSPECT_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": cword}
    )
    return [line.split(",", 1)[1] for line in result.stdout.splitlines() if line.startswith("plain,")]


def test_completion_of_node_and_pod_names_from_kubernetes(kube_api: KubeApi) -> None:
    k = f"--kubeconfig {kube_api.kubeconfig}"
    assert complete(f"winspect hns all {k} --nodes win-") == ["win-node-1", "win-node-2", "win-noip"]
    assert complete(f"winspect {k} capture nodes win-node-1,win") == [
        "win-node-1,win-node-2",
        "win-node-1,win-noip",
    ]
    assert complete(f"winspect {k} capture pods web") == ["web-0", "web-1"]
    assert complete(f"winspect {k} -n shop vfp-counter -p ") == ["api-0"]
    assert complete("winspect counter --target a=127.0.0.1 --target b=127.0.0.2 --nodes ") == ["a", "b"]
    assert complete(f"winspect {k} capture pods -n s") == ["shop"]
    assert complete(f"winspect hns all {k} --namespace w") == ["web", "winspect-system"]
    assert complete("winspect capture all --type ") == ["all", "flow", "drop"]
    assert complete("winspect capture all --type D") == ["drop"]
    kube_api.stop()
    assert complete(f"winspect hns all {k} --nodes win-") == []  # API down: no suggestions, no error


def test_counter_with_a_node_name_as_namespace_stops_before_any_node(kube_api: KubeApi) -> None:
    code, out, err = kube(kube_api, "counter", "-n", "win-node-1")
    assert (code, out) == (2, "")
    assert err == (
        "winspect: error: -n/--namespace takes a namespace, and counter has none; 'win-node-1' is a node: "
        "use --nodes win-node-1\n"
    )
