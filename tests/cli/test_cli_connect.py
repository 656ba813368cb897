"""--connect: its values, what it cannot be combined with (before anything is dialled), and a tunnel
the cluster's RBAC refuses (a configuration error, said once for every node)."""

from __future__ import annotations

import json

from click.testing import Result
from support.cli import KubeApi, run_inprocess


def test_a_tunnel_cannot_go_to_a_target_address() -> None:
    result = run_inprocess("--connect", "tunnel", "--target", "win1=10.0.0.4", "--insecure", "hns", "all")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "winspect: error: --target names an address to dial directly; --connect tunnel reaches nodes found "
        "through Kubernetes: drop one of them"
    )


def test_an_unknown_mode_names_the_choices() -> None:
    result = run_inprocess("hns", "all", "--connect", "ssh")
    assert result.exit_code == 2
    assert "Invalid value for '--connect': 'ssh' is not one of 'auto', 'direct', 'tunnel'." in result.stderr


def test_the_help_says_what_each_mode_does() -> None:
    text = "".join(run_inprocess("hns", "--help").stdout.split())  # wherever the lines break
    expected = (
        "--connect MODE How to reach node servers: direct (their address), tunnel (through the Kubernetes "
        "API server's port-forward, when the nodes' network is out of reach) or auto (direct, else the "
        "tunnel, per node). [default: auto]"
    )
    assert "".join(expected.split()) in text


NODES = "win-node-1,win-node-2"  # the sandbox API's Windows nodes with an InternalIP
TUNNEL_REFUSED = [
    "winspect: 2 nodes (win-node-1, win-node-2): forbidden by RBAC: user 'sandbox-viewer' may not list pods "
    "in namespace winspect-system, which tunnels through the API server need",
    "winspect: a cluster admin can allow it with: kubectl create rolebinding winspect-tunnel-sandbox-viewer "
    "-n winspect-system --role=winspect-tunnel --user=sandbox-viewer",
]


def _as_viewer(kube_api: KubeApi, *args: str) -> Result:
    return run_inprocess(
        "--kubeconfig", str(kube_api.kubeconfig), "--context", "winspect-sandbox-viewer", "--timeout", "5",
        "--connect", "tunnel", *args,
    )  # fmt: skip


def test_a_tunnel_refused_by_rbac_is_a_configuration_error_said_once(kube_api: KubeApi) -> None:
    result = _as_viewer(kube_api, "-v", "hns", "networks", "--nodes", NODES)
    assert result.exit_code == 3
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[-2:] == TUNNEL_REFUSED
    # No line says an address was dialled: a tunnel never dials the nodes' InternalIPs.
    assert not [ln for ln in lines if "calling" in ln], result.stderr


def test_a_capture_whose_tunnels_rbac_refuses_says_it_once_and_exits_3(kube_api: KubeApi) -> None:
    result = _as_viewer(kube_api, "capture", "nodes", NODES, "-d", "1")
    assert result.exit_code == 3
    lines = result.stderr.splitlines()
    said = [ln for ln in lines if ln.startswith("winspect: ") and "winspect-system" in ln]
    assert said == TUNNEL_REFUSED


def test_json_keeps_the_binding_in_each_nodes_message(kube_api: KubeApi) -> None:
    result = _as_viewer(kube_api, "hns", "networks", "--nodes", NODES, "-o", "json")
    assert result.exit_code == 3
    errors = json.loads(result.stdout)["errors"]
    assert sorted(errors) == ["win-node-1", "win-node-2"]
    for error in errors.values():
        assert error["code"] == "PERMISSION_DENIED"
        assert error["message"] == (
            TUNNEL_REFUSED[0].split(": ", 2)[2] + "; " + TUNNEL_REFUSED[1].removeprefix("winspect: ")
        )
