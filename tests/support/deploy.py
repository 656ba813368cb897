"""Helpers of the deployment tests: the repository's paths, running the CLI, API objects."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
BASE = REPO / "deploy" / "base"
DATA = REPO / "src" / "winspect" / "deploy" / "data"
FILES = ("namespace.yaml", "serviceaccount.yaml", "rbac.yaml", "daemonset.yaml")

Obj = dict[str, Any]


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`winspect ARGS` as a process (python -m winspect.cli), without any kubeconfig of the machine."""
    environ = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    environ["HOME"] = environ.get("WINSPECT_TEST_HOME", "/nonexistent")
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "winspect.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environ,
        check=False,
    )


def daemonset_obj(uid: str = "ds-uid", generation: int = 2) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {
            "name": "winspectserv",
            "namespace": "winspect-system",
            "uid": uid,
            "generation": generation,
        },
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": "winspect"}},
            "template": {"spec": {"nodeSelector": {"kubernetes.io/os": "windows"}, "containers": []}},
        },
    }


def node_obj(name: str, os_label: str = "windows", ready: bool = True) -> Obj:
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/os": os_label}},
        "status": {
            "conditions": [
                {"type": "Ready", "status": "True" if ready else "False", "reason": "KubeletNotReady"}
            ]
        },
    }


def pod_obj(
    name: str,
    node: str,
    *,
    uid: str = "ds-uid",
    generation: int = 2,
    ready: bool = False,
    phase: str = "Running",
    container_state: Obj | None = None,
    deleting: bool = False,
    created: str = "2026-11-26T10:00:00Z",
    conditions: list[Obj] | None = None,
) -> Obj:
    meta: Obj = {
        "name": name,
        "namespace": "winspect-system",
        "labels": {"app.kubernetes.io/name": "winspect", "pod-template-generation": str(generation)},
        "ownerReferences": [
            {
                "apiVersion": "apps/v1",
                "kind": "DaemonSet",
                "name": "winspectserv",
                "uid": uid,
                "controller": True,
            }
        ],
        "creationTimestamp": created,
    }
    if deleting:
        meta["deletionTimestamp"] = "2026-11-26T10:05:00Z"
    conds = list(conditions or [])
    conds.append({"type": "Ready", "status": "True" if ready else "False"})
    status: Obj = {"phase": phase, "conditions": conds}
    if container_state is not None:
        status["containerStatuses"] = [{"name": "winspectserv", "ready": ready, "state": container_state}]
    return {"metadata": meta, "spec": {"nodeName": node}, "status": status}
