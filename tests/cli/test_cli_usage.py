"""The command line itself: help, option placement, validation errors (exit 2), completion."""

from __future__ import annotations

import json

import pytest
from support.cli import run_inprocess, run_process

COMMANDS = ["capture", "trace", "counter", "vfp-counter", "hns", "version", "completion"]


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_top_level_help_lists_commands_and_examples(flag: str) -> None:
    result = run_inprocess(flag)
    assert result.exit_code == 0
    for name in COMMANDS:
        assert f"  {name} " in result.stdout
    assert (
        "Examples:" in result.stdout and "winspect capture nodes win1,win2,win3 -t TCP -d 10" in result.stdout
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["capture", "-h"],
            [
                "capture nodes N1,N2",
                "-d, --duration, --time SECONDS",
                "-t, --protocols PROTO",
                "--counters-only",
                "-A, --all-namespaces",
                "Global options:",
                "--target",
                "winspect capture nodes win1,win2,win3 -t TCP -d 10",
            ],
        ),
        (
            ["hns", "all", "-h"],
            ["HNS (Host Networking Service) objects", "--nodes N1,N2", "-d, --json", "winspect hns all"],
        ),
        (["counter", "-h"], ["--nodes N1,N2", "-i, --include-hidden", "winspect counter"]),
        (["vfp-counter", "-h"], ["-p, --pod POD", "-d, --detailed", "winspect vfp-counter --pod web-0"]),
        (["version", "-h"], ["--client", "winspect version"]),
        (["completion", "-h"], ["bash|zsh|fish|powershell", "Invoke-Expression"]),
    ],
)
def test_every_command_has_help_with_examples(args: list[str], expected: list[str]) -> None:
    result = run_inprocess(*args)
    assert result.exit_code == 0, result.output
    assert "Examples:" in result.stdout
    for text in expected:
        assert text in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["-o", "json", "hns", "all"],
        ["hns", "all", "-o", "json"],
        ["hns", "-o", "json", "all"],
    ],
)
def test_global_options_before_or_after_the_command(args: list[str], loopback_hosts: list[str]) -> None:
    # Nothing listens on the address: the node fails, and the document still comes out as JSON.
    # (--insecure: this is about option placement, not about credentials.)
    result = run_inprocess(*args, "--target", f"win1={loopback_hosts[0]}:50051", "--insecure")
    doc = json.loads(result.stdout)
    assert doc["command"] == "hns" and doc["type"] == "all" and doc["results"] == {}
    assert doc["errors"]["win1"]["code"] == "UNAVAILABLE"
    assert result.exit_code == 1


def test_subcommand_value_wins_over_the_group_one(loopback_hosts: list[str]) -> None:
    result = run_inprocess(
        "-o",
        "text",
        "--port",
        "1",
        "hns",
        "all",
        "-o",
        "json",
        "--port",
        "50051",
        "--target",
        f"win1={loopback_hosts[0]}",
        "--insecure",  # about option values, not credentials
    )
    doc = json.loads(result.stdout)
    assert doc["errors"]["win1"]["address"] == f"{loopback_hosts[0]}:50051"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["capture", "nodes", "w1", "-t", "SCTP"], "invalid protocol 'SCTP' in -t/--protocols"),
        (["capture", "nodes", "w1", "-t", "tcp_synack"], "invalid TCP flag 'SYNACK'"),
        (
            ["capture", "nodes", "w1", "-i", "10.0.0.300"],
            "invalid IP address or CIDR '10.0.0.300' in -i/--ips",
        ),
        (["capture", "nodes", "w1", "-r", "70000"], "invalid port '70000' in -r/--ports"),
        (["capture", "nodes", "w1", "-m", "00-11-22"], "invalid MAC address '00-11-22' in -m/--macs"),
        (["capture", "nodes", "w1", "--type", "drops"], "invalid packet type 'drops' in --type"),
        (["capture", "nodes", "w1", "-d", "ten"], "invalid duration 'ten' in -d/--duration"),
        (["capture", "nodes", "w1", "--time", "-3"], "invalid duration '-3' in -d/--duration"),
        (
            ["capture", "nodes", "w1", "-d", "500ms"],
            "invalid duration '500ms' in -d/--duration: a capture lasts whole seconds (e.g. 1, 10, 30s, 2m)",
        ),
        (["capture", "nodes"], "capture nodes needs node names, e.g. winspect capture nodes win1,win2"),
        (["capture", "pods"], "capture pods needs pod names"),
        (["capture", "all", "w1"], "capture all takes no names"),
        (["capture", "nodes", "w1", "-A"], "-A/--all-namespaces applies to capture pods only"),
        (["capture", "nodes", "bad!name"], "invalid node name 'bad!name' in capture nodes"),
        (["hns", "all", "--nodes", "a,b/c"], "'/' is only allowed in pod names"),
        (["hns", "all", "--target", "win1"], "invalid --target 'win1': expected NAME=HOST[:PORT]"),
        (["hns", "all", "--timeout", "0"], "invalid duration '0' in --timeout: must be more than 0"),
        (
            ["hns", "all", "--target", "w=127.0.0.1", "--context", "x", "--insecure"],
            "--target talks to nodes directly, and --insecure sends no credentials",
        ),
        (["hns", "all", "--insecure", "--ca-file", "ca.crt"], "--insecure connects in plain text"),
        (
            ["hns", "all", "--kubeconfig", "/nonexistent/kubeconfig"],
            "--kubeconfig /nonexistent/kubeconfig: no such",
        ),
        (["vfp-counter", "-p", "a,b"], "-p/--pod takes one pod, got 2"),
        (["capture", "pods", "web-0", "--target", "w=127.0.0.1"], "pod 'web-0' in capture pods needs its IP"),
    ],
)
def test_validation_errors_exit_2_with_a_clear_message(args: list[str], message: str) -> None:
    result = run_inprocess(*args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["hns", "everything"], "Invalid value for 'all|endpoints|loadbalancers|namespaces|networks'"),
        (["capture", "some"], "Invalid value for 'nodes|pods|all'"),
        (["-o", "xml", "hns", "all"], "Invalid value for '-o' / '--output'"),
        (["--port", "0", "hns", "all"], "Invalid value for '--port'"),
        (["vfp-counter"], "vfp-counter needs a pod, e.g. winspect vfp-counter web-0 (or -p web-0)"),
        (["vfp-counter", "a", "-p", "b"], "two pods given, 'a' and -p/--pod 'b': vfp-counter takes one"),
        (["nosuch"], "No such command 'nosuch'"),
    ],
)
def test_click_usage_errors_exit_2(args: list[str], message: str) -> None:
    result = run_inprocess(*args)
    assert result.exit_code == 2
    assert message in result.stderr


def test_namespace_flag_on_node_commands_warns(loopback_hosts: list[str]) -> None:
    result = run_inprocess("counter", "-n", "default", "--target", f"win1={loopback_hosts[0]}")
    assert result.stderr.splitlines()[0] == (
        "winspect: warning: -n/--namespace does not apply to counter; to choose nodes use --nodes"
    )
    # The warning does not stop the command: it goes on and fails for want of credentials.
    assert result.stderr.splitlines()[1].startswith("winspect: error: node servers need credentials")
    assert result.exit_code == 3


@pytest.mark.parametrize("command", ["counter", "hns all"])
def test_a_node_name_given_to_namespace_stops_and_suggests_nodes(
    command: str, loopback_hosts: list[str]
) -> None:
    # Nothing listens at the addresses: the command stops before contacting any node.
    result = run_process(
        *command.split(),
        "-n",
        "win2",
        "--target",
        f"win1={loopback_hosts[0]},win2={loopback_hosts[1]}",
        "--insecure",
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (
        f"winspect: error: -n/--namespace takes a namespace, and {command.split()[0]} has none; "
        "'win2' is a node: use --nodes win2\n"
    )


def test_unknown_target_node_lists_close_matches() -> None:
    result = run_inprocess(
        "hns",
        "all",
        "--nodes",
        "win-nod-1",
        "--target",
        "win-node-1=127.0.0.1",
        "--target",
        "other=127.0.0.2",
    )
    assert result.exit_code == 2
    assert (
        "node 'win-nod-1' is not one of the --target nodes (win-node-1, other); did you mean win-node-1?"
        in (result.stderr)
    )


def test_no_kubernetes_configuration(tmp_path: object) -> None:
    result = run_inprocess("hns", "all", env={"HOME": str(tmp_path), "KUBERNETES_SERVICE_HOST": ""})
    assert result.exit_code == 3
    assert (
        "no Kubernetes configuration found" in result.stderr and "--target NAME=HOST[:PORT]" in result.stderr
    )


def test_client_version() -> None:
    from winspect import __version__

    result = run_inprocess("version", "--client")
    assert result.exit_code == 0 and result.stdout == f"Client: winspect {__version__}\n"
    doc = json.loads(run_inprocess("version", "--client", "-o", "json").stdout)
    assert doc["client"] == {"version": __version__}
    assert run_inprocess("--version").stdout == f"winspect {__version__}\n"


@pytest.mark.parametrize(
    ("shell", "marker"),
    [
        ("bash", "_WINSPECT_COMPLETE=bash_complete"),
        ("zsh", "#compdef winspect"),
        ("fish", "complete --no-files --command winspect"),
        ("powershell", "Register-ArgumentCompleter -Native -CommandName winspect"),
    ],
)
def test_completion_scripts(shell: str, marker: str) -> None:
    result = run_inprocess("completion", shell)
    assert result.exit_code == 0
    assert marker in result.stdout


def test_completion_answers_for_each_shell() -> None:
    # What the generated scripts ask winspect when the user presses TAB.
    bash = run_process(
        env={"_WINSPECT_COMPLETE": "bash_complete", "COMP_WORDS": "winspect h", "COMP_CWORD": "1"}
    )
    assert "plain,hns" in bash.stdout.split()
    ps = run_process(
        env={"_WINSPECT_COMPLETE": "powershell_complete", "COMP_WORDS": "winspect hns e", "COMP_CWORD": "2"}
    )
    assert "plain\tendpoints\t" in ps.stdout.splitlines()
    ps = run_process(
        env={
            "_WINSPECT_COMPLETE": "powershell_complete",
            "COMP_WORDS": "winspect capture --co",
            "COMP_CWORD": "2",
        }
    )
    assert any(line.startswith("plain\t--counters-only\tNo packets") for line in ps.stdout.splitlines())


def test_node_that_accepts_no_connection_times_out(loopback_hosts: list[str]) -> None:
    import socket

    # A socket that listens but never accepts: TCP connects, the gRPC handshake never completes.
    with socket.socket() as s:
        s.bind((loopback_hosts[0], 50051))
        s.listen(1)
        result = run_inprocess(  # --insecure: about connecting, not credentials
            "hns",
            "all",
            "--target",
            f"win1={loopback_hosts[0]}",
            "--timeout",
            "1",
            "-o",
            "json",
            "--insecure",
        )
    assert result.exit_code == 1
    error = json.loads(result.stdout)["errors"]["win1"]
    assert error["code"] == "CONNECT_TIMEOUT"
    assert (
        error["message"]
        == f"cannot connect to {loopback_hosts[0]}:50051 within 1s (node down or unreachable?)"
    )


def test_kubeconfig_variable_naming_missing_files_names_them(tmp_path: object) -> None:
    missing = f"{tmp_path}/nope.yaml"
    result = run_process(
        "hns", "all", env={"KUBECONFIG": missing, "HOME": str(tmp_path), "KUBERNETES_SERVICE_HOST": ""}
    )
    assert result.returncode == 3 and result.stdout == ""
    assert result.stderr == (
        f"winspect: error: KUBECONFIG names the file {missing}: no such file; point KUBECONFIG at your "
        "kubeconfig, use --kubeconfig FILE, or reach nodes directly with --target NAME=HOST[:PORT]\n"
    )


def test_help_shows_the_exit_code_table() -> None:
    lines = run_inprocess("--help").stdout.splitlines()
    start = lines.index("Exit codes:")
    table = [
        line.split()[0] for line in lines[start + 1 :] if line.startswith("  ") and line.split()[0].isdigit()
    ]
    assert table == ["0", "1", "2", "3", "130"]


def test_capture_duration_error_offers_only_what_it_accepts() -> None:
    result = run_inprocess("capture", "nodes", "w1", "-d", "ten")
    assert result.exit_code == 2
    assert result.stderr == (
        "winspect: error: invalid duration 'ten' in -d/--duration: "
        "expected whole seconds (e.g. 10) or 30s, 2m, 1h\n"
    )
    for offered in ("30s", "2m", "1h"):  # every duration the message offers is accepted
        assert run_inprocess("capture", "nodes", "bad!", "-d", offered).stderr.startswith(
            "winspect: error: invalid node name"
        )


@pytest.mark.parametrize(
    ("typo", "suggestion"),
    [("captur", "'capture'"), ("hn", "'hns'"), ("counters", "'counter'"), ("vfp-counters", "'vfp-counter'")],
)
def test_a_mistyped_command_suggests_the_nearest(typo: str, suggestion: str) -> None:
    result = run_inprocess(typo, "all")
    assert result.exit_code == 2 and result.stdout == ""
    assert f"Error: No such command '{typo}'. Did you mean {suggestion}?" in result.stderr


def test_a_command_like_none_suggests_nothing() -> None:
    result = run_inprocess("xyzzy")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == "Error: No such command 'xyzzy'."


@pytest.mark.parametrize(
    ("typed", "kind"),
    [
        ("endpoint", "endpoints"),
        ("ep", "endpoints"),
        ("loadbalancer", "loadbalancers"),
        ("lb", "loadbalancers"),
        ("namespace", "namespaces"),
        ("network", "networks"),
        ("Endpoints", "endpoints"),
    ],
)
def test_hns_takes_singular_and_short_forms(typed: str, kind: str, loopback_hosts: list[str]) -> None:
    result = run_inprocess("hns", typed, "-o", "json", "--target", f"w={loopback_hosts[0]}", "--insecure")
    assert json.loads(result.stdout)["type"] == kind


@pytest.mark.parametrize(
    ("typed", "scope"), [("node", "nodes"), ("no", "nodes"), ("pod", "pods"), ("po", "pods")]
)
def test_capture_takes_singular_and_short_scopes(typed: str, scope: str) -> None:
    result = run_inprocess("capture", typed)
    assert result.exit_code == 2
    assert f"capture {scope} needs {scope[:-1]} names" in result.stderr


@pytest.mark.parametrize("args", [["hns", "all"], ["counter"], ["version"], ["vfp-counter", "p=10.0.0.1"]])
def test_yaml_output_is_the_json_document(args: list[str], loopback_hosts: list[str]) -> None:
    import yaml

    target = ["--target", f"w1={loopback_hosts[0]},w2={loopback_hosts[1]}", "--insecure"]
    as_json = run_inprocess(*args, *target, "-o", "json")
    as_yaml = run_inprocess(*args, *target, "-o", "yaml")
    assert as_yaml.exit_code == as_json.exit_code == 1
    assert yaml.safe_load(as_yaml.stdout) == json.loads(as_json.stdout)
    assert not as_yaml.stdout.lstrip().startswith("{")
