"""winspect command line entry point.

Subcommands are loaded lazily (only the one being run is imported) so that
`winspect --help` stays fast. Each subcommand lives in its own module of
this package and is registered in COMMANDS as "module:attribute".
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, NoReturn

import click

from winspect.cli.options import global_options
from winspect.errors import EXIT_CODES

COMMANDS: dict[str, tuple[str, str]] = {
    # name: (module:attribute, one-line help shown by `winspect --help`)
    "capture": ("winspect.cli.capture:capture", "Capture packets on Windows nodes or pods (pktmon)."),
    "counter": ("winspect.cli.counter:counter", "Packet counters of the captures running on nodes."),
    "vfp-counter": ("winspect.cli.vfp_counter:vfp_counter", "VFP port counters of a pod."),
    "hns": ("winspect.cli.hns:hns", "HNS endpoints, load balancers, namespaces, networks."),
    "version": ("winspect.cli.version:version", "Client and node server versions."),
    "completion": ("winspect.cli.completion:completion", "Shell completion (bash, zsh, fish, powershell)."),
    "install": ("winspect.cli.install:install", "Install winspectserv on every Windows node (DaemonSet)."),
    "uninstall": ("winspect.cli.install:uninstall", "Remove winspectserv from the cluster."),
    "rotate-certs": ("winspect.cli.install:rotate_certs", "New TLS certificates for winspectserv."),
    "sandbox": ("winspect.cli.sandbox:sandbox", "Run a simulated Windows cluster locally"),
}

EXAMPLES = """
winspect capture nodes win1,win2,win3 -t TCP -d 10
winspect capture pods web-0 --counters-only
winspect counter
winspect vfp-counter --pod web-0 --detailed
winspect hns endpoints -o json
winspect --target win1=10.0.0.4 hns networks      # a node by address (credentials: kubeconfig)
winspect --connect tunnel hns all                 # through the Kubernetes API server (private nodes)
"""


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS:
            target = COMMANDS[cmd_name][0]
            module_name, attr = target.split(":")
            cmd = getattr(importlib.import_module(module_name), attr)
            assert isinstance(cmd, click.Command)
            return cmd
        return super().get_command(ctx, cmd_name)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """As click's, with the nearest command suggested for a name that is none."""
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            name = args[0] if args else ""
            if name.startswith("-") or name in COMMANDS:
                raise
            import difflib

            matches = difflib.get_close_matches(name.lower(), list(COMMANDS), n=1, cutoff=0.6)
            if not matches:
                raise
            raise click.UsageError(f"{exc.message} Did you mean {matches[0]!r}?", ctx) from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help from the registry so --help imports no subcommand module.
        rows = [(name, COMMANDS[name][1]) for name in sorted(COMMANDS)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_paragraph()
        formatter.write_text("Examples:")
        for line in EXAMPLES.strip("\n").splitlines():
            formatter.write(f"  {line}\n")
        formatter.write_paragraph()
        formatter.write_text(
            "Global options are accepted before or after the command. Run 'winspect COMMAND -h' for "
            "a command's options and examples."
        )
        with formatter.section("Exit codes"):
            formatter.write_dl([(str(code), meaning) for code, meaning in EXIT_CODES])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="winspect", prog_name="winspect", message="%(prog)s %(version)s")
@global_options
def cli() -> None:
    """winspect: inspect the Windows container networking stack on Kubernetes nodes.

    Talks to winspectserv on every Windows node (found through Kubernetes,
    or given with --target) and runs them all at once: packet captures,
    pktmon and VFP counters, HNS objects.
    """


def main(argv: list[str] | None = None) -> Any:
    import os

    if os.environ.get("_WINSPECT_COMPLETE"):
        from winspect.cli.completion import register

        register()
    return cli.main(args=argv if argv is not None else sys.argv[1:], prog_name="winspect")


def run() -> NoReturn:
    """The `winspect` executable: `main`, then `_leave` with its exit code."""
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc.code)
    _leave(code)


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _leave(code: int) -> NoReturn:
    """Exit without the interpreter's finalisation, once everything printed is flushed.

    A command may end while a background lookup (winspect's CA, the DaemonSet's port) is still
    running in a daemon thread; finalisation then ends that thread inside gRPC's or httpx's
    native code, which can abort the process ("FATAL: exception not rethrown", exit 134)
    after the command's output was already right. Every file the CLI writes is closed by the
    command itself, so nothing is lost by skipping finalisation.
    """
    import os
    from contextlib import suppress

    for stream in (sys.stdout, sys.stderr):
        with suppress(OSError, ValueError):  # the reader is gone, or the stream was closed
            stream.flush()
    os._exit(code)
