"""Pods and nodes chosen as kubectl chooses them, through the sandbox's Kubernetes API: label
selectors (-l), deploy/NAME and svc/NAME. Nothing listens at the nodes' addresses: which pods and
nodes a command chose shows in its -v lines and its announcement, before the nodes fail."""

from __future__ import annotations

import pytest
from support.cli import KubeApi, run_inprocess


def kube(api: KubeApi, *args: str) -> tuple[int, str]:
    result = run_inprocess(*args, "--kubeconfig", str(api.kubeconfig), "--timeout", "5")
    return result.exit_code, result.stderr


def chosen_pods(stderr: str) -> list[str]:
    return sorted(
        line.split()[2]
        for line in stderr.splitlines()
        if line.startswith("winspect: pod ") and " on node " in line
    )


@pytest.mark.parametrize(
    ("args", "pods"),
    [
        (["capture", "pods", "-l", "app=web"], ["default/web-0", "default/web-1"]),  # not linux-0
        (
            ["capture", "pods", "-l", "app in (web,api)", "-A"],
            ["default/web-0", "default/web-1", "shop/api-0", "web/web-0"],
        ),
        (["capture", "pods", "deploy/web"], ["default/web-0", "default/web-1"]),
        (["capture", "pod", "deployment/web,web-0"], ["default/web-0", "default/web-1"]),
        (["-n", "shop", "capture", "pods", "svc/api"], ["shop/api-0"]),
    ],
)
def test_pods_chosen_by_label_or_workload(kube_api: KubeApi, args: list[str], pods: list[str]) -> None:
    code, err = kube(kube_api, *args, "-d", "1", "-v")
    assert chosen_pods(err) == pods, err
    assert code == 1  # the nodes are not there


def test_nodes_chosen_by_label(kube_api: KubeApi) -> None:
    code, err = kube(kube_api, "capture", "nodes", "-l", "agentpool=npwin", "-d", "1", "-v")
    assert f"winspect: node win-node-1 at {kube_api.node_hosts['win-node-1']}:50051" in err.splitlines()
    assert "capturing on win-node-1 for 1s" in err and "win-node-2" not in err
    code, err = kube(kube_api, "capture", "nodes", "-l", "agentpool", "-d", "1", "-v")
    assert "capturing on win-node-1, win-node-2 for 1s" in err  # lin-node-1 has one too: not Windows
    assert code == 1


@pytest.mark.parametrize("command", [["hns", "networks"], ["counter"], ["version"]])
def test_node_commands_choose_nodes_by_label(kube_api: KubeApi, command: list[str]) -> None:
    code, err = kube(kube_api, *command, "-l", "agentpool=npwin2", "-v", "-o", "json")
    assert f"winspect: node win-node-2 at {kube_api.node_hosts['win-node-2']}:50051" in err.splitlines()
    assert "win-node-1" not in err
    assert code == 1  # the node is not there
    code, err = kube(kube_api, *command, "--selector", "agentpool in (npwin,npwin2)", "-v", "-o", "json")
    assert "winspect: node win-node-1 at " in err and "winspect: node win-node-2 at " in err


def test_vfp_counter_chooses_its_pod_by_label(kube_api: KubeApi) -> None:
    code, err = kube(kube_api, "vfp-counter", "-l", "app=api", "-n", "shop", "-v")
    assert chosen_pods(err) == ["shop/api-0"], err
    assert code == 1  # the node is not there


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["hns", "all", "-l", "agentpool=nplin"], "no Windows node matches -l 'agentpool=nplin'"),
        (
            ["vfp-counter", "-l", "app=web"],
            "-l 'app=web' selects 2 pods (default/web-0, default/web-1): vfp-counter takes one, name it",
        ),
        (["vfp-counter", "web-0", "-l", "app=web"], "give a pod or -l/--selector, not both"),
        (["counter", "--nodes", "win-node-1", "-l", "a=b"], "give --nodes or -l/--selector, not both"),
        (["version", "-l", "app in (web"], "invalid label selector 'app in (web' in -l/--selector"),
        (
            ["capture", "pods", "-l", "app in (web"],
            "invalid label selector 'app in (web' in -l/--selector: unable to parse requirement: ",
        ),
        (["capture", "pods", "-l", "app=none"], "-l 'app=none' selects no pod in namespace 'default'"),
        (
            ["capture", "pods", "deploy/starting"],
            "deployment/starting selects 1 pod, none running on a Windows node with an IP "
            "in namespace 'default'",
        ),
        (["capture", "pods", "deploy/nope"], "deployment 'nope' not found in namespace 'default'"),
        (
            ["-n", "shop", "capture", "pods", "svc/external"],
            "service/external in namespace 'shop' has no pod selector",
        ),
        (["capture", "nodes", "-l", "agentpool=nplin"], "no Windows node matches -l 'agentpool=nplin'"),
        (["capture", "all", "-l", "a=b"], "-l/--selector chooses nodes or pods"),
        (["capture", "pods", "web-0", "-l", "a=b"], "give pods names or -l/--selector, not both"),
        (
            ["vfp-counter", "deploy/web"],
            "deploy/web selects 2 pods (default/web-0, default/web-1): vfp-counter takes one, name it",
        ),
    ],
)
def test_choices_that_find_nothing_are_usage_errors(kube_api: KubeApi, args: list[str], message: str) -> None:
    code, err = (
        kube(kube_api, *args, "-d", "1")
        if args[0] == "capture" or args[1] == "capture"
        else kube(kube_api, *args)
    )
    assert code == 2, err
    assert message in err and len(err.splitlines()) == 1, err


def test_selectors_need_kubernetes() -> None:
    for args in (["capture", "nodes", "-l", "a=b"], ["capture", "pods", "deploy/web"]):
        result = run_inprocess(*args, "--target", "w=127.0.0.1", "--insecure", "-d", "1")
        assert result.exit_code == 2
        assert "Kubernetes" in result.stderr and "--target" in result.stderr
