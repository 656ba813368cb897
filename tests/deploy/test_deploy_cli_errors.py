"""install and uninstall when the Kubernetes API cannot be reached: one line, exit code 1."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml
from support.deploy import run_cli


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the socket is: nothing listens there


@pytest.mark.parametrize("command", [["install", "--wait-timeout", "1"], ["uninstall"]])
def test_unreachable_api_server_is_one_line(tmp_path: Path, command: list[str]) -> None:
    server = f"https://127.0.0.1:{closed_port()}"
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    proc = run_cli("--kubeconfig", str(kubeconfig), *command)
    assert proc.returncode == 3
    assert proc.stderr == (
        f"winspect: error: cannot reach the Kubernetes API server {server}: connection refused "
        "(is the API server running and the address right?)\n"
    )
    assert proc.stdout == ""


def test_no_kubeconfig_at_all(tmp_path: Path) -> None:
    proc = run_cli("uninstall", env={"HOME": str(tmp_path)})
    assert proc.returncode == 3
    assert proc.stderr.startswith("winspect: error: no Kubernetes configuration found: use --kubeconfig FILE")
