"""--connect: its values, and what it cannot be combined with (before anything is dialled)."""

from __future__ import annotations

from support.cli import run_inprocess


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
