"""The emulated pktmon's help texts, and the old command line (a node's "old" flavour).

The old command line is pktmon 10.0.17763.1's (Server 2019 without cumulative
updates, reference section 6.1): only `filter`, `comp`, `reset`, `start` and
`stop`; `comp list` and `comp counters` instead of `list` and `counters`; no
real-time display, no `etl2txt`; `stop` prints a counter table and exits 87;
`filter list` prints the table without the `Packet Filters:` title; `filter
add` has no `-e`. Its `start` (`-c` = components, `-d` = drop only, `--etw`)
is not emulated (exit 50); the current command line's options get exit 87.

Help texts (both flavours) are COMPOSITE: their options are those the
reference lists (sections 1.1, 1.2, 1.5, 6.1); the real wording is not known.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from winspect.emulator import store
from winspect.emulator.pktmon_filters import PacketFilter, render_filter_list
from winspect.emulator.pktmon_text import render_counters, render_list
from winspect.emulator.toolbase import ERROR_INVALID_PARAMETER, ERROR_NOT_SUPPORTED, fail

START_HELP = """Usage: pktmon start [-c [-o] [--comp <selector>] [--type <type>] [--pkt-size <bytes>]
                       [--flags <mask>]] [-f <name>] [-s <size>] [-m <mode>]

    -c, --capture        Enable packet capture and packet counters.
    -o, --counters-only  Collect packet counters only.
    --comp               Components to monitor: all, nics, or component IDs (comma separated).
    --type               Packets to capture: all, flow, drop.
    --pkt-size           Bytes to log from each packet (0 = entire packet; default 128).
    --flags              Hexadecimal mask of packet metadata to log (default 0x012).
    -f, --file-name      Log file name (default PktMon.etl).
    -s, --file-size      Maximum log file size in megabytes (default 512).
    -m, --log-mode       circular, multi-file, real-time or memory."""

FILTER_ADD_HELP = """Usage: pktmon filter add [name] [-m mac [mac2]] [-v vlan]
                         [-d { IPv4 | IPv6 | ARP | number }]
                         [-t { TCP [flags...] | UDP | ICMP | ICMPv6 | number }]
                         [-i ip [ip2]] [-p port [port2]] [-b] [-e [port]]

    -e, --encap  Apply the filter to the inner packet of VXLAN, GRE, NVGRE and IP-in-IP
                 (VXLAN port: 4789 unless given)."""

COUNTERS_HELP = """Usage: pktmon counters [--type { all | flow | drop }] [--include-hidden] [--zero]
                       [--drop-reason] [--live] [--refresh-rate <n>] [--json]

    --json  Print the counters as JSON (implies --include-hidden and --drop-reason)."""

CURRENT_HELP = {"start": START_HELP, "filter add": FILTER_ADD_HELP, "counters": COUNTERS_HELP}

OLD_USAGE = """Packet Monitor - network diagnostics tool.

Usage: pktmon { filter | comp | reset | start | stop | help } [options]

    filter    Manage packet filters.
    comp      Manage registered components.
    reset     Reset counters to zero.
    start     Start packet monitoring.
    stop      Stop monitoring."""

OLD_START_HELP = """Usage: pktmon start [-c { all | nics | ids... }] [-d] [--etw [-p size] [-k keywords]]
                       [-f file] [-s size]

    -c, --components  Components to monitor: all, nics, or component IDs.
    -d, --drop-only   Log dropped packets only.
    --etw             Log packets to a trace file.
    -f, --file        Log file name.
    -s, --size        Maximum log file size in megabytes."""

OLD_FILTER_ADD_HELP = """Usage: pktmon filter add [name] [-m mac [mac2]] [-v vlan]
                         [-d { IPv4 | IPv6 | number }] [-t { TCP [flags...] | UDP | ICMP | ICMPv6 | number }]
                         [-i ip [ip2]] [-p port [port2]] [-b]"""

OLD_HELP = {"start": OLD_START_HELP, "filter add": OLD_FILTER_ADD_HELP}

# Options of the current command line's `start` that the old one refuses (exit 87).
_CURRENT_START_OPTIONS = {
    "--capture", "--comp", "--type", "--pkt-size", "--flags", "-m", "--log-mode", "--file-name",
    "--file-size", "--counters-only", "-o",
}  # fmt: skip

_HELP_WORDS = ("help", "-h", "--help", "/?")


def command_help(args: list[str], old: bool) -> str | None:
    """The help `pktmon <args>` prints when its last word asks for help, else None."""
    if not args or args[-1].lower() not in _HELP_WORDS:
        return None
    command = " ".join(a.lower() for a in args[:-1])
    helps = OLD_HELP if old else CURRENT_HELP
    return helps.get(command, "")


def old_main(state_dir: Path, args: list[str], filter_command: Callable[[Path, list[str]], int]) -> int:
    """pktmon 10.0.17763.1: `filter`, `comp list|counters`, `reset`, `start` (not emulated), `stop`."""
    if not args or args[0].lower() in _HELP_WORDS:
        print(OLD_USAGE)
        return 0
    helped = command_help(args, old=True)
    if helped is not None:
        print(helped or OLD_USAGE)
        return 0
    cmd, rest = args[0].lower(), args[1:]
    if cmd == "filter" and rest and rest[0].lower() == "list":
        st = store.read_json(state_dir, store.PKTMON_FILE)
        print(render_filter_list([PacketFilter.from_dict(f) for f in st["filters"]]))
        return 0
    if (
        cmd == "filter"
        and rest
        and rest[0].lower() == "add"
        and any(a.lower() in ("-e", "--encap") for a in rest)
    ):
        return fail("Error: Unknown parameter '-e'.", ERROR_INVALID_PARAMETER)
    if cmd in ("filter", "reset"):
        return filter_command(state_dir, args)
    if cmd == "comp":
        return _comp(state_dir, rest)
    if cmd == "stop":
        return _stop(state_dir)
    if cmd == "start":
        unknown = [a for a in rest if a.lower() in _CURRENT_START_OPTIONS]
        if unknown:
            return fail(
                f"Error: Unknown parameter '{unknown[0]}'.\n\n{OLD_START_HELP}", ERROR_INVALID_PARAMETER
            )
        return fail(
            "Error: the old command line's 'pktmon start' is not supported by the emulator.",
            ERROR_NOT_SUPPORTED,
        )
    return fail(f"Error: Unknown command '{args[0]}'.\n\n{OLD_USAGE}", ERROR_INVALID_PARAMETER)


def _comp(state_dir: Path, rest: list[str]) -> int:
    sub = rest[0].lower() if rest else ""
    include_hidden = any(a.lower() in ("-i", "--include-hidden") for a in rest[1:])
    components = store.read_json(state_dir, store.COMPONENTS_FILE)
    if sub == "list":
        print(render_list(components, all_types=False, include_hidden=include_hidden))
        return 0
    if sub == "counters":
        counters = store.read_json(state_dir, store.PKTMON_COUNTERS_FILE, None)
        print(render_counters(components, counters, include_hidden=include_hidden))
        return 0
    return fail("Error: 'pktmon comp' needs one of: list, counters.", ERROR_INVALID_PARAMETER)


def _stop(state_dir: Path) -> int:
    """Ends a session (there is no process to wait for here), prints the counters, exits 87."""
    with store.locked(state_dir):
        st = store.read_json(state_dir, store.PKTMON_FILE)
        st.update(running=False, stop_requested=False)
        store.write_json(state_dir, store.PKTMON_FILE, st)
    components = store.read_json(state_dir, store.COMPONENTS_FILE)
    counters = store.read_json(state_dir, store.PKTMON_COUNTERS_FILE, None)
    print(render_counters(components, counters))
    return ERROR_INVALID_PARAMETER
