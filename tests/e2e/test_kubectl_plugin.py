"""`kubectl winspect ...`: the real kubectl finds the installed `kubectl-winspect` on PATH and runs it
with the arguments after `winspect`, kubectl's flags (--kubeconfig, --context, -n/--namespace)
before or after winspect's command, against the sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.e2e import E2E, Result
from support.machine import require_tool

WEB_POD = "iis-frontend-69b2ba90c-5cx7l"  # namespace web, on aksnpwin000000 (the sandbox's seed 0)


@pytest.fixture
def kubectl_winspect(e2e: E2E, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Runs `kubectl winspect ARGS` with a PATH of kubectl's directory and a plugin directory that
    holds only a link to this environment's `kubectl-winspect`."""
    kubectl = require_tool("kubectl", "kubectl", also=("/usr/bin",))
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    for name in ("kubectl-winspect", "kubectl_complete-winspect"):
        installed = Path(sys.executable).parent / name
        assert installed.is_file(), f"pip install puts the {name} console script next to python"
        (plugins / name).symlink_to(installed)
    path = os.pathsep.join([str(plugins), str(Path(kubectl).parent), "/usr/bin", "/bin"])

    def run(*args: str, kubeconfig_env: bool = True, complete: bool = False) -> Result:
        env = {**e2e.env, "PATH": path}
        if not kubeconfig_env:
            env.pop("KUBECONFIG")
        argv = [kubectl, "__complete", "winspect", *args] if complete else [kubectl, "winspect", *args]
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=90, check=False)
        return Result(proc.returncode, proc.stdout, proc.stderr)

    return run


def test_kubectl_runs_the_plugin_against_the_cluster_of_kubeconfig(kubectl_winspect, e2e: E2E) -> None:  # type: ignore[no-untyped-def]
    listed = kubectl_winspect("hns", "networks", "-o", "json")
    assert listed.code == 0, listed.err
    assert set(listed.json()["results"]) == set(e2e.windows_nodes())

    kubeconfig = str(e2e.sandbox.kubeconfig)
    for args in (
        ["--kubeconfig", kubeconfig, "hns", "networks", "-o", "json"],
        ["hns", "networks", "-o", "json", f"--kubeconfig={kubeconfig}"],
    ):
        given = kubectl_winspect(*args, kubeconfig_env=False)
        assert given.code == 0, (args, given.err)
        assert set(given.json()["results"]) == set(e2e.windows_nodes())

    missing = kubectl_winspect("hns", "networks", "--kubeconfig", "/nonexistent/config", kubeconfig_env=False)
    assert missing.code == 2
    assert missing.err == "winspect: error: --kubeconfig /nonexistent/config: no such file\n"


def test_namespace_is_honoured_before_and_after_the_command(kubectl_winspect) -> None:  # type: ignore[no-untyped-def]
    for args in (
        ["-n", "web", "vfp-counter", WEB_POD, "-o", "json"],
        ["vfp-counter", WEB_POD, "-o", "json", "--namespace=web"],
        ["vfp-counter", "--namespace", "web", WEB_POD, "-o", "json"],
    ):
        result = kubectl_winspect(*args)
        assert result.code == 0, (args, result.err)
        assert result.json()["pod"] == {"namespace": "web", "name": WEB_POD, "ip": "10.224.0.19"}, args

    default = kubectl_winspect("vfp-counter", WEB_POD)
    assert default.code == 2
    assert f"pod {WEB_POD!r} not found in namespace 'default'" in default.err


def test_context_is_honoured_before_and_after_the_command(kubectl_winspect) -> None:  # type: ignore[no-untyped-def]
    # The viewer's context has namespace web: the pod is found there without -n.
    for args in (
        ["--context", "winspect-sandbox-viewer", "vfp-counter", WEB_POD, "-o", "json"],
        ["vfp-counter", WEB_POD, "-o", "json", "--context=winspect-sandbox-viewer"],
    ):
        result = kubectl_winspect(*args)
        assert result.code == 0, (args, result.err)
        assert result.json()["pod"]["namespace"] == "web", args

    for args in (
        ["--context", "winspect-sandbox-nobody", "hns", "networks"],
        ["hns", "networks", "--context", "winspect-sandbox-nobody"],
    ):
        nobody = kubectl_winspect(*args)
        assert nobody.code == 3, (args, nobody.err)
        assert "forbidden by RBAC: user 'sandbox-nobody' may not list nodes" in nobody.err


def test_help_and_errors_name_the_plugin_as_it_is_run(kubectl_winspect) -> None:  # type: ignore[no-untyped-def]
    top = kubectl_winspect("--help")
    assert top.code == 0
    assert top.out.startswith("Usage: kubectl winspect [OPTIONS] COMMAND [ARGS]...")
    assert "  kubectl winspect counter\n" in top.out
    sub = kubectl_winspect("capture", "-h")
    assert sub.code == 0 and sub.out.startswith("Usage: kubectl winspect capture ")
    typo = kubectl_winspect("captur")
    assert typo.code == 2
    assert "Try 'kubectl winspect --help' for help." in typo.err and "Did you mean 'capture'?" in typo.err
    assert json.loads(kubectl_winspect("version", "--client", "-o", "json").out)["client"]["version"]


def test_kubectl_completes_the_plugin_words(kubectl_winspect, e2e: E2E) -> None:  # type: ignore[no-untyped-def]
    # kubectl __complete is what kubectl's shell completion scripts run on <TAB>.
    commands = kubectl_winspect("capt", complete=True)
    assert commands.code == 0, commands.err
    assert commands.out.splitlines()[-1] == ":4"
    assert [line.split("\t")[0] for line in commands.out.splitlines()[:-1]] == ["capture"]
    nodes = kubectl_winspect("hns", "networks", "--nodes", "aksnpwin00000", complete=True)
    assert nodes.out.splitlines() == [*e2e.windows_nodes(), ":4"]
    namespaces = kubectl_winspect("-n", "w", complete=True)
    assert namespaces.out.splitlines() == ["web", "winspect-system", ":4"]
