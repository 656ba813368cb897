"""`winspect sandbox`: a simulated Windows cluster on this machine.

up / status / down manage a background sandbox in a state directory; run
brings one up for a single winspect command and tears it down afterwards.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any, NoReturn

import click

EXAMPLES = """\
\b
Examples:
  winspect sandbox up                      # 3 Windows nodes, 1 Linux node
  export KUBECONFIG=~/.local/state/winspect/sandbox/kubeconfig
  winspect sandbox run -- capture nodes aksnpwin000000 -t TCP -d 3
  winspect sandbox down
"""


def _default_dir() -> Path:
    from winspect.sandbox.layout import default_dir

    return default_dir()


def _fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"winspect: error: {message}", err=True)
    raise SystemExit(code)


def _dir_option(f: Any) -> Any:
    return click.option(
        "--dir",
        "directory",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="State directory of the sandbox (default: $XDG_STATE_HOME/winspect/sandbox).",
    )(f)


def _node_options(f: Any) -> Any:
    f = click.option(
        "--unreachable-nodes",
        is_flag=True,
        help="The nodes' InternalIPs are addresses nothing listens on (a private network seen from "
        "outside): only the Kubernetes API's port-forward reaches their servers (winspect --connect).",
    )(f)
    f = click.option(
        "--seed",
        type=int,
        default=0,
        show_default=True,
        help="Seed of the cluster model and its traffic (same seed, same cluster).",
    )(f)
    f = click.option(
        "--linux-nodes",
        type=click.IntRange(0, 50),
        default=1,
        show_default=True,
        help="Linux nodes (they host the system pods and run no winspect server).",
    )(f)
    f = click.option(
        "--network",
        type=click.Choice(["l2bridge", "overlay"]),
        default="l2bridge",
        show_default=True,
        help="Pod network of the Windows nodes: l2bridge, or overlay (VXLAN between the nodes, "
        "as Flannel or Calico VXLAN).",
    )(f)
    f = click.option(
        "--windows-nodes",
        type=click.IntRange(1, 200),
        default=3,
        show_default=True,
        help="Emulated Windows nodes, each a winspectserv on its own 127.0.N.x address.",
    )(f)
    return f


@click.group(epilog=EXAMPLES, context_settings={"help_option_names": ["-h", "--help"]})
def sandbox() -> None:
    """Run a simulated Windows cluster locally.

    A Kubernetes API on loopback (TLS, bearer token) and emulated Windows nodes,
    each a real winspectserv driving emulated pktmon, vfpctrl and hnsdiag.
    """


def _usage(sb: Any, root: Path, default: bool) -> str:
    dir_arg = "" if default else f" --dir {root}"
    nodes = sb.nodes
    first = nodes[0]["name"] if nodes else "NODE"
    lines = [
        f"sandbox ready: {len(nodes)} Windows node(s) at {nodes[0]['address'] if nodes else '-'}"
        + (f"..{nodes[-1]['address']}" if len(nodes) > 1 else "")
        + f", Kubernetes API at {sb.api_url} ({sb.state.get('startup_seconds', '?')}s)",
        f"kubeconfig: {sb.kubeconfig}",
        *(["pod network: overlay (VXLAN between the nodes)"] if sb.state.get("network") == "overlay" else []),
        *(
            [
                "unreachable nodes: nothing listens on their InternalIPs "
                f"({nodes[0].get('internal_ip')}..): winspect reaches them through the Kubernetes API "
                "(--connect auto or tunnel)"
            ]
            if sb.state.get("unreachable_nodes") and nodes
            else []
        ),
        *[
            f"{n['name']} runs in time zone {n['time_zone']} (pktmon prints local time there)"
            for n in nodes
            if n.get("time_zone", "UTC") != "UTC"
        ],
        "",
        "Use it:",
        f"  export KUBECONFIG={sb.kubeconfig}",
        "  kubectl get nodes -o wide",
        f"  winspect capture nodes {first} -t TCP -d 5",
        "  winspect hns all",
        "",
        "Contexts: winspect-sandbox (admin), winspect-sandbox-viewer (nodes; pods in namespace web;",
        "          winspect-viewer: hns, counters, vfp-counter), winspect-sandbox-nobody (no rights)",
        f"Stop it:   winspect sandbox down{dir_arg}",
    ]
    return "\n".join(lines)


def _pktmon_options(f: Any) -> Any:
    f = click.option(
        "--foreign-pktmon-session",
        "foreign_sessions",
        multiple=True,
        metavar="N",
        help="Windows node N (from 1) runs a pktmon session someone else started.",
    )(f)
    f = click.option(
        "--defender-filters",
        "defender_filters",
        multiple=True,
        metavar="N",
        help="Windows node N (from 1) carries Microsoft Defender's 13 SenseNdr pktmon filters.",
    )(f)
    f = click.option(
        "--pktmon-flavour",
        "flavours",
        multiple=True,
        metavar="[N=]current|old",
        help="pktmon's command line on Windows node N (from 1), or on all: old = pktmon 10.0.17763.1 "
        "(Server 2019 without updates).",
    )(f)
    return f


@sandbox.command()
@_node_options
@_pktmon_options
@_dir_option
def up(
    windows_nodes: int,
    linux_nodes: int,
    seed: int,
    network: str,
    flavours: tuple[str, ...],
    defender_filters: tuple[str, ...],
    foreign_sessions: tuple[str, ...],
    directory: Path | None,
    unreachable_nodes: bool,
) -> None:
    """Start a sandbox in the background and print how to use it."""
    from winspect.sandbox import runtime
    from winspect.sandbox.pktmon_options import NodeOptionError, node_options

    root = directory or _default_dir()
    try:
        options = node_options(windows_nodes, flavours, defender_filters, foreign_sessions)
    except NodeOptionError as e:
        _fail(str(e), 2)
    try:
        sb = runtime.up(
            root,
            windows_nodes,
            linux_nodes,
            seed,
            progress=lambda m: click.echo(m, err=True),
            node_options=options,
            network=network,
            unreachable_nodes=unreachable_nodes,
        )
    except runtime.SandboxError as e:
        _fail(str(e))
    except KeyboardInterrupt:
        _fail("interrupted; nothing left running", 130)
    click.echo(_usage(sb, root, directory is None))


@sandbox.command()
@_dir_option
@click.option(
    "-o",
    "--output",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output format.",
)
def status(directory: Path | None, output: str) -> None:
    """Show the sandbox: API, kubeconfig, nodes and whether each serves. Exit 1 when none runs."""
    from winspect.sandbox import runtime

    info = runtime.status(directory or _default_dir())
    if output == "json":
        click.echo(json.dumps(info, indent=2))
    elif not info["running"]:
        if "status" in info:
            click.echo(
                f"the sandbox in {info['dir']} is not running (its supervisor is gone); "
                "`winspect sandbox down` removes what is left"
            )
        else:
            where = f" --dir {shlex.quote(info['dir'])}" if directory is not None else ""
            click.echo(f"no sandbox in {info['dir']}; start one with `winspect sandbox up{where}`")
    else:
        serving = sum(1 for n in info["nodes"] if n["serving"])
        click.echo(
            f"sandbox in {info['dir']}: {info['status']} (supervisor pid {info['supervisor_pid']}, "
            f"seed {info['seed']}, started {info['started_at']})"
        )
        click.echo(f"Kubernetes API: {info['api']}")
        click.echo(f"kubeconfig:     {info['kubeconfig']}")
        click.echo(f"Windows nodes:  {serving}/{len(info['nodes'])} serving")
        rows = [
            (n["name"], f"{n['address']}:{n['port']}", "serving" if n["serving"] else "NOT SERVING")
            for n in info["nodes"]
        ]
        name_w = max([len("NAME")] + [len(r[0]) for r in rows])
        addr_w = max([len("ADDRESS")] + [len(r[1]) for r in rows])
        click.echo(f"  {'NAME':<{name_w}}  {'ADDRESS':<{addr_w}}  STATE")
        for name, address, state in rows:
            click.echo(f"  {name:<{name_w}}  {address:<{addr_w}}  {state}")
    if not info["running"]:
        raise SystemExit(1)


@sandbox.command()
@_dir_option
def down(directory: Path | None) -> None:
    """Stop the sandbox and remove its state."""
    from winspect.sandbox import runtime

    root = directory or _default_dir()
    try:
        had = runtime.down(root)
    except runtime.SandboxError as e:
        _fail(str(e))
    click.echo(
        f"sandbox in {root.expanduser().absolute()} stopped and removed" if had else f"no sandbox in {root}"
    )


@sandbox.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@_node_options
@click.argument("args", nargs=-1, type=click.UNPROCESSED, required=True)
def run(
    windows_nodes: int,
    linux_nodes: int,
    seed: int,
    network: str,
    unreachable_nodes: bool,
    args: tuple[str, ...],
) -> None:
    """Run one winspect command against a fresh sandbox, then remove it.

    \b
    winspect sandbox run -- capture nodes aksnpwin000000 -t TCP -d 3
    Exits with the command's exit code.
    """
    from winspect.sandbox import runtime

    argv = list(args)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        _fail("give the winspect command to run after --, for example: winspect sandbox run -- hns all", 2)
    try:
        code = runtime.run(
            argv,
            windows_nodes,
            linux_nodes,
            seed,
            progress=lambda m: click.echo(f"sandbox: {m}", err=True),
            network=network,
            unreachable_nodes=unreachable_nodes,
        )
    except runtime.SandboxError as e:
        _fail(str(e))
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    raise SystemExit(code)
