"""Per-node readiness of the DaemonSet: which pod counts, and the reason shown for a node not ready."""

from __future__ import annotations

from support.deploy import daemonset_obj, node_obj, pod_obj

from winspect.deploy.readiness import rollout


def test_ready_only_with_a_current_ready_pod_owned_by_the_daemonset_on_every_windows_node() -> None:
    ds = daemonset_obj()
    nodes = [node_obj("win-b"), node_obj("win-a"), node_obj("lin-1", "linux")]
    pods = [
        pod_obj("winspectserv-a", "win-a", ready=True, container_state={"running": {}}),
        pod_obj("winspectserv-b", "win-b", ready=True, container_state={"running": {}}),
    ]
    state = rollout(ds, nodes, pods)
    assert [n.node for n in state.nodes] == ["win-a", "win-b"]  # the Linux node is not a target
    assert state.ready and state.ready_count == 2 and state.total == 2
    assert [(n.pod, n.status) for n in state.nodes] == [
        ("winspectserv-a", "Ready"),
        ("winspectserv-b", "Ready"),
    ]


def test_each_not_ready_node_says_why() -> None:
    ds = daemonset_obj()
    nodes = [node_obj(n) for n in ("win-1", "win-2", "win-3", "win-4", "win-5", "win-6")] + [
        node_obj("win-7", ready=False)
    ]
    pull = {"waiting": {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "ghcr.io/x/y:1"'}}
    pods = [
        pod_obj("p1", "win-1", ready=True, container_state={"running": {}}),
        pod_obj("p2", "win-2", phase="Pending", container_state=pull),
        pod_obj("p3", "win-3", container_state={"running": {}}),
        pod_obj("p4", "win-4", container_state={"terminated": {"reason": "Error", "exitCode": 2}}),
        # a ready pod of another DaemonSet (other uid) and one of an older template do not count
        pod_obj("p5-foreign", "win-5", uid="other", ready=True, container_state={"running": {}}),
        pod_obj("p6-old", "win-6", generation=1, ready=True, container_state={"running": {}}),
    ]
    state = rollout(ds, nodes, pods)
    assert not state.ready
    assert state.ready_count == 1 and state.total == 7
    by_node = {n.node: n for n in state.nodes}
    assert by_node["win-2"].status == "ImagePullBackOff"
    assert by_node["win-2"].detail == 'pod p2: ImagePullBackOff: Back-off pulling image "ghcr.io/x/y:1"'
    assert by_node["win-3"].status == "Running"
    assert "running but not ready" in by_node["win-3"].detail
    assert by_node["win-4"].status == "Error"
    assert by_node["win-4"].detail == "pod p4: container exited (Error, exit code 2)"
    assert (by_node["win-5"].pod, by_node["win-5"].status) == (None, "no pod")
    assert by_node["win-6"].pod == "p6-old"
    assert by_node["win-6"].detail.endswith("(older template, waiting for its replacement)")
    assert by_node["win-7"].status == "no pod"
    assert (
        by_node["win-7"].detail == "no winspectserv pod on this node yet; node is NotReady (KubeletNotReady)"
    )
    assert [n.node for n in state.not_ready()] == ["win-2", "win-3", "win-4", "win-5", "win-6", "win-7"]


def test_a_terminating_pod_next_to_its_replacement_reports_the_replacement() -> None:
    ds = daemonset_obj()
    creating = {"waiting": {"reason": "ContainerCreating"}}
    pods = [
        pod_obj("old", "win-1", generation=1, ready=True, deleting=True, container_state={"running": {}}),
        pod_obj("new", "win-1", phase="Pending", container_state=creating, created="2026-11-26T10:06:00Z"),
    ]
    (node,) = rollout(ds, [node_obj("win-1")], pods).nodes
    assert (node.ready, node.pod, node.status, node.detail) == (
        False,
        "new",
        "ContainerCreating",
        "pod new: ContainerCreating",
    )


def test_unschedulable_pod_and_no_windows_nodes() -> None:
    ds = daemonset_obj()
    unsched = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3 nodes"}]
    pods = [pod_obj("p", "win-1", phase="Pending", conditions=unsched)]
    (node,) = rollout(ds, [node_obj("win-1")], pods).nodes
    assert (node.status, node.detail) == ("Unschedulable", "pod p cannot be scheduled: 0/3 nodes")
    empty = rollout(ds, [node_obj("lin", "linux")], [])
    assert empty.total == 0 and empty.ready
