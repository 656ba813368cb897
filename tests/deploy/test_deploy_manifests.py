"""The manifests: one source (package data = deploy/base), valid against Kubernetes 1.29's schema
(strict), and `winspect install --dry-run` prints exactly them, with --image and --port changing
only the image and the port places."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from support.deploy import BASE, DATA, FILES, REPO, run_cli
from support.machine import require_tool

import winspect
from winspect.deploy.manifests import DEFAULT_IMAGE, DEFAULT_PORT, render

K8S_VERSION = "1.29"
SAMPLES = sorted((REPO / "deploy" / "samples").glob("*.yaml"))
PORT_PATHS = {
    ("spec", "template", "spec", "containers", 0, "env", 0, "value"),
    ("spec", "template", "spec", "containers", 0, "ports", 0, "containerPort"),
    ("spec", "template", "spec", "containers", 0, "ports", 0, "hostPort"),
    ("spec", "template", "spec", "containers", 0, "livenessProbe", "tcpSocket", "port"),
    ("spec", "template", "spec", "containers", 0, "readinessProbe", "tcpSocket", "port"),
}
IMAGE_PATH = ("spec", "template", "spec", "containers", 0, "image")


def expected_change(image: str, port: int) -> dict[tuple[Any, ...], Any]:
    """The leaves of the DaemonSet that an image and a port change: the env value is a string."""
    return {IMAGE_PATH: image, **{p: str(port) if p[-1] == "value" else port for p in PORT_PATHS}}


def validate_all(docs: list[dict[str, Any]]) -> None:
    assert docs, "no documents"
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def kustomize(path: Path) -> list[dict[str, Any]]:
    kubectl = require_tool("kubectl", "kubectl")  # its built-in kustomize builds the deploy/ overlays
    out = subprocess.run(
        [kubectl, "kustomize", str(path)], capture_output=True, text=True, check=True, timeout=60
    )
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def leaves(obj: Any, prefix: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], Any]:
    if isinstance(obj, dict):
        return {k: v for key, val in obj.items() for k, v in leaves(val, (*prefix, key)).items()}
    if isinstance(obj, list):
        return {k: v for i, val in enumerate(obj) for k, v in leaves(val, (*prefix, i)).items()}
    return {prefix: obj}


def changed(before: dict[str, Any], after: dict[str, Any]) -> dict[tuple[Any, ...], Any]:
    a, b = leaves(before), leaves(after)
    assert a.keys() == b.keys()
    return {k: b[k] for k in a if a[k] != b[k]}


def test_deploy_base_is_a_byte_copy_of_the_package_data() -> None:
    for name in FILES:
        assert (BASE / name).read_bytes() == (DATA / name).read_bytes(), (
            f"deploy/base/{name} differs from src/winspect/deploy/data/{name}: run `make manifests`"
        )
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    assert kustomization["resources"] == list(FILES)


@pytest.mark.parametrize("name", FILES)
def test_base_files_are_valid_kubernetes_objects(name: str) -> None:
    validate_all(list(yaml.safe_load_all((BASE / name).read_text())))


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_samples_are_valid_and_target_their_windows_build(sample: Path) -> None:
    docs = [d for d in yaml.safe_load_all(sample.read_text()) if d]
    validate_all(docs)
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    selector = deployment["spec"]["template"]["spec"]["nodeSelector"]
    build = {"2019": "10.0.17763", "2022": "10.0.20348"}[sample.stem.rsplit("-", 1)[1]]
    assert selector == {"kubernetes.io/os": "windows", "node.kubernetes.io/windows-build": build}
    assert {d["kind"] for d in docs} == {"Deployment", "Service"}


def test_kustomize_base_builds_the_same_objects_as_install() -> None:
    built = kustomize(BASE)
    validate_all(built)

    def key(d: dict[str, Any]) -> tuple[str, str]:
        return d["kind"], d["metadata"]["name"]

    assert sorted(built, key=key) == sorted(render().objects, key=key)


def test_overlay_changes_the_image_and_every_port_place() -> None:
    built = kustomize(REPO / "deploy" / "overlays" / "custom")
    validate_all(built)
    ds = next(d for d in built if d["kind"] == "DaemonSet")
    assert changed(render().daemonset(), ds) == expected_change(
        "myregistry.example/winspectserv:0.1.0", 43058
    )


def test_default_image_tag_is_the_package_version() -> None:
    assert DEFAULT_IMAGE.rsplit(":", 1)[1] == winspect.__version__
    assert DEFAULT_PORT == 50051


def test_dry_run_prints_the_deploy_base_files() -> None:
    proc = run_cli("install", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "---\n".join((BASE / name).read_text() for name in FILES)
    assert proc.stderr == ""


def test_dry_run_with_image_and_port_changes_exactly_those() -> None:
    image = "myregistry.azurecr.io:5000/team/winspectserv:1.2.3"
    proc = run_cli("install", "--dry-run", "--image", image, "--port", "43058")
    assert proc.returncode == 0, proc.stderr
    docs = list(yaml.safe_load_all(proc.stdout))
    validate_all(docs)
    default = render().objects
    assert [d["kind"] for d in docs] == [
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRole",
        "ClusterRoleBinding",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "ServiceAccount",
        "ClusterRoleBinding",
        "Role",
        "Role",  # winspect-tunnel
        "DaemonSet",
    ]
    assert docs[:-1] == list(default[:-1])
    assert changed(default[-1], docs[-1]) == expected_change(image, 43058)
    # the comments of the files survive: the text differs from the files only on those lines
    changed_lines = [
        (a, b)
        for a, b in zip(
            "---\n".join((BASE / n).read_text() for n in FILES).splitlines(),
            proc.stdout.splitlines(),
            strict=True,
        )
        if a != b
    ]
    assert len(changed_lines) == 6


def test_dry_run_json_is_a_list_of_the_same_objects() -> None:
    proc = run_cli("install", "--dry-run", "--port", "40000", "-o", "json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["kind"] == "List" and doc["apiVersion"] == "v1"
    assert doc["items"] == list(render(port=40000).objects)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--image", "Registry/WinspectServ:1"],
            "--image 'Registry/WinspectServ:1' is not a valid image reference",
        ),
        (["--image", "reg.io/winspectserv:bad tag"], "is not a valid image reference"),
        (["--port", "70000"], "Invalid value for '--port': 70000 is not in the range 1<=x<=65535"),
        (["--wait-timeout", "soon"], "invalid duration 'soon' in --wait-timeout"),
        (
            ["-n", "kube-system"],
            "-n/--namespace does not apply to install: winspect is always installed in namespace",
        ),
        (
            ["--target", "w=127.0.0.1"],
            "--target talks to nodes directly; install works through the Kubernetes API",
        ),
    ],
)
def test_bad_install_input_is_a_usage_error(args: list[str], message: str) -> None:
    proc = run_cli("install", "--dry-run", *args)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_image_references_accepted() -> None:
    for image in (
        "winspectserv",
        "localhost:5000/winspectserv:dev",
        "myregistry.azurecr.io/tools/winspectserv:0.1.0",
        "ghcr.io/winspect/winspectserv@sha256:" + "a" * 64,
        "ghcr.io/winspect/winspectserv:0.1.0@sha256:" + "0" * 64,
    ):
        assert render(image=image).daemonset()["spec"]["template"]["spec"]["containers"][0]["image"] == image
