"""Emulated `pktmon` (Packet Monitor) for one emulated Windows node.

Commands: filter add|list|remove, start (real-time or multi-file), stop,
status, counters, list, reset, unload, etl2txt. The state directory comes
from the environment (WINSPECT_EMU_STATE); `pktmon stop` in another process
ends a running real-time `pktmon start` within ~20 ms, as do SIGINT/SIGTERM.

`start --log-mode multi-file` returns at once, like the real tool, and
leaves a detached logger process (`pktmon_logger.py`, the emulated driver)
writing numbered log files (`<name>1.etl`, `<name>2.etl`, ...) until
`pktmon stop`; `etl2txt` converts them. The files are the emulator's own
format (JSON lines), not ETW: only the emulated `etl2txt` reads them.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any

from winspect.emulator import store
from winspect.emulator.clock import NodeClock
from winspect.emulator.node_options import pktmon_flavour
from winspect.emulator.pktmon_filters import (
    MAX_FILTERS,
    CompiledFilter,
    FilterError,
    PacketFilter,
    first_match,
    parse_filter_add,
    render_filter_list,
    render_filter_list_current,
)
from winspect.emulator.pktmon_language import JAPANESE, translate_banner, translate_record
from winspect.emulator.pktmon_logfile import (
    DEFAULT_FILE_NAME,
    LogFileError,
    convert_to_text,
)
from winspect.emulator.pktmon_old import command_help, old_main
from winspect.emulator.pktmon_text import (
    render_counters,
    render_counters_json,
    render_list,
    render_list_json,
    render_start_banner,
    render_status,
)
from winspect.emulator.protocols import TCP_FLAG_BITS
from winspect.emulator.toolbase import (
    ERROR_BUSY,
    ERROR_INVALID_PARAMETER,
    ERROR_NOT_SUPPORTED,
    ERROR_PATH_NOT_FOUND,
    begin,
    fail,
    pipe_closed,
)

USAGE = """Packet Monitor (emulated) - network diagnostics tool.

Usage: pktmon { filter | list | start | stop | status | unload | counters | reset | etl2txt | help } [options]

    filter    Manage packet filters (add, list, remove).
    list      List packet processing components.
    start     Start packet capture (this emulator: --log-mode real-time or multi-file).
    stop      Stop data collection.
    status    Query current status.
    unload    Unload the PktMon driver.
    counters  Display current packet counters.
    reset     Reset packet counters to zero.
    etl2txt   Convert a log file to text format."""

NOT_RUNNING = "Packet Monitor is not running."
# How often a real-time session looks for a stop request, and flushes counters.
_STOP_POLL_S = 0.02
_FLUSH_S = 0.1
# A session whose counters were not flushed for this long belongs to a dead process
# (misjudging a slow one only makes `pktmon stop` return before the capture notices it).
_STALE_SESSION_S = 0.5
_STOP_WAIT_S = 5.0
_FILTERS_BUSY = "packet filters cannot be changed while Packet Monitor is running; run 'pktmon stop' first."


class ArgvError(Exception):
    """A command line pktmon refuses, with the Windows error code it exits with."""

    def __init__(self, message: str, code: int = ERROR_INVALID_PARAMETER) -> None:
        super().__init__(message)
        self.code = code


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    began = begin("pktmon", args)
    if isinstance(began, int):
        return began
    state_dir = began
    if pktmon_flavour(store.read_json(state_dir, store.PKTMON_FILE)) == "old":
        try:
            return old_main(state_dir, args, _old_filter_or_reset)
        except (ArgvError, FilterError) as e:
            return fail(f"Error: {e}", e.code if isinstance(e, ArgvError) else ERROR_INVALID_PARAMETER)
    if not args or args[0].lower() in ("help", "-h", "--help", "/?"):
        print(USAGE)
        return 0
    cmd, rest = args[0].lower(), args[1:]
    helped = command_help(args, old=False)
    if helped is not None:
        print(helped or USAGE)
        return 0
    handlers = {
        "filter": _cmd_filter,
        "start": _cmd_start,
        "stop": _cmd_stop,
        "status": _cmd_status,
        "counters": _cmd_counters,
        "list": _cmd_list,
        "reset": _cmd_reset,
        "unload": _cmd_unload,
        "etl2txt": _cmd_etl2txt,
        "format": _cmd_etl2txt,  # the older name of etl2txt
    }
    handler = handlers.get(cmd)
    if handler is None:
        if cmd in ("etl2pcap", "hex2pkt", "pcapng", "comp"):
            return fail(f"Error: 'pktmon {args[0]}' is not supported by the emulator.", ERROR_NOT_SUPPORTED)
        return fail(f"Error: unknown command '{args[0]}'.\n\n{USAGE}")
    try:
        return handler(state_dir, rest)
    except (ArgvError, FilterError, LogFileError) as e:
        code = e.code if isinstance(e, (ArgvError, LogFileError)) else ERROR_INVALID_PARAMETER
        return fail(f"Error: {e}", code)
    except BrokenPipeError:
        return pipe_closed()


def _old_filter_or_reset(state_dir: Path, args: list[str]) -> int:
    """`filter ...` and `reset`, which the old command line shares with the current one."""
    command = _cmd_filter if args[0].lower() == "filter" else _cmd_reset
    return command(state_dir, args[1:])


# ---------------------------------------------------------------- options


def _parse_options(
    args: list[str], spec: dict[str, tuple[str, str]], command: str
) -> dict[str, list[str] | bool]:
    """spec: spelling (lower case) -> (key, arity) with arity "0", "1" or "*"."""
    out: dict[str, list[str] | bool] = {}
    i = 0
    while i < len(args):
        opt = args[i]
        entry = spec.get(opt.lower())
        if entry is None:
            if opt.startswith("-"):
                raise ArgvError(f"unknown parameter '{opt}' for 'pktmon {command}'.")
            raise ArgvError(f"unexpected value '{opt}' for 'pktmon {command}'.")
        key, arity = entry
        if key in out:
            raise ArgvError(f"parameter '{opt}' is specified more than once.")
        i += 1
        if arity == "0":
            out[key] = True
            continue
        vals = []
        while i < len(args) and not args[i].startswith("-"):
            vals.append(args[i])
            i += 1
            if arity == "1":
                break
        if not vals:
            raise ArgvError(f"parameter '{opt}' requires a value.")
        out[key] = vals
    return out


def _one(opts: dict[str, list[str] | bool], key: str) -> str | None:
    v = opts.get(key)
    if isinstance(v, list):
        return v[0]
    return None


def _choice(value: str | None, allowed: tuple[str, ...], what: str, default: str) -> str:
    if value is None:
        return default
    if value.lower() not in allowed:
        raise ArgvError(f"invalid {what} '{value}': use {', '.join(allowed)}.")
    return value.lower()


# ---------------------------------------------------------------- filter


def _cmd_filter(state_dir: Path, rest: list[str]) -> int:
    if not rest:
        raise ArgvError("'pktmon filter' needs one of: list, add, remove.")
    sub, args = rest[0].lower(), rest[1:]
    if sub == "list":
        if args:
            raise ArgvError(f"unexpected value '{args[0]}' for 'pktmon filter list'.")
        st = store.read_json(state_dir, store.PKTMON_FILE)
        print(render_filter_list_current([PacketFilter.from_dict(f) for f in st["filters"]]))
        return 0
    if sub == "add":
        new = parse_filter_add(args)
        with store.locked(state_dir):
            st = store.read_json(state_dir, store.PKTMON_FILE)
            if st["running"]:
                raise ArgvError(
                    _FILTERS_BUSY,
                    ERROR_BUSY,
                )
            if len(st["filters"]) >= MAX_FILTERS:
                raise ArgvError(f"the maximum number of packet filters ({MAX_FILTERS}) is already active.")
            st["filters"].append(new.to_dict())
            store.write_json(state_dir, store.PKTMON_FILE, st)
        return 0
    if sub == "remove":
        if args:
            raise ArgvError(f"unexpected value '{args[0]}' for 'pktmon filter remove'.")
        with store.locked(state_dir):
            st = store.read_json(state_dir, store.PKTMON_FILE)
            if st["running"]:
                raise ArgvError(
                    _FILTERS_BUSY,
                    ERROR_BUSY,
                )
            st["filters"] = []
            store.write_json(state_dir, store.PKTMON_FILE, st)
        return 0
    raise ArgvError(f"unknown filter command '{rest[0]}': use list, add or remove.")


# ---------------------------------------------------------------- start

_START_SPEC = {
    "-c": ("capture", "0"),
    "--capture": ("capture", "0"),
    "-o": ("counters_only", "0"),
    "--counters-only": ("counters_only", "0"),
    "--comp": ("comp", "*"),
    "--type": ("type", "1"),
    "--pkt-size": ("pkt_size", "1"),
    "--flags": ("flags", "1"),
    "-f": ("file_name", "1"),
    "--file-name": ("file_name", "1"),
    "-s": ("file_size", "1"),
    "--file-size": ("file_size", "1"),
    "-m": ("log_mode", "1"),
    "--log-mode": ("log_mode", "1"),
    "-t": ("trace", "0"),
    "--trace": ("trace", "0"),
    "-p": ("provider", "1"),
    "--provider": ("provider", "1"),
}


def _parse_start(args: list[str], components: list[dict[str, Any]]) -> dict[str, Any]:
    opts = _parse_options(args, _START_SPEC, "start")
    if opts.get("trace") or opts.get("provider"):
        raise ArgvError(
            "event tracing (--trace, --provider) is not supported by the emulator.", ERROR_NOT_SUPPORTED
        )
    counters_only = bool(opts.get("counters_only"))
    ptype = _choice(_one(opts, "type"), ("all", "flow", "drop"), "packet type", "all")
    pkt_size, flags, file_size = _start_sizes(opts)
    mode, file_name = _start_log(opts)
    return {
        "counters_only": counters_only,
        "type": ptype,
        "pkt_size": pkt_size,
        "flags": flags,
        "comp": _start_components(opts, components),
        "log_mode": mode,
        "file_name": file_name,
        "file_size": file_size,
    }


def _start_sizes(opts: dict[str, Any]) -> tuple[int, int, int]:
    """--pkt-size, --flags and --file-size, or their defaults."""
    pkt_size = 128
    if "pkt_size" in opts:
        raw = _one(opts, "pkt_size") or ""
        if not raw.isdigit() or int(raw) > 65535:
            raise ArgvError(f"invalid packet size '{raw}': use a number of bytes from 0 to 65535 (0 = all).")
        pkt_size = int(raw)
    flags = 0x012
    if "flags" in opts:
        raw = _one(opts, "flags") or ""
        try:
            flags = int(raw, 16)
        except ValueError:
            raise ArgvError(f"invalid flags '{raw}': use a hexadecimal mask such as 0x012.") from None
    file_size = 512
    if "file_size" in opts:
        raw = _one(opts, "file_size") or ""
        if not raw.isdigit() or int(raw) == 0:
            raise ArgvError(f"invalid file size '{raw}': use a number of megabytes.")
        file_size = int(raw)
    return pkt_size, flags, file_size


def _start_log(opts: dict[str, Any]) -> tuple[str, str | None]:
    """The log mode and, for multi-file logging, the absolute path of the log file."""
    mode = _choice(
        _one(opts, "log_mode"), ("circular", "multi-file", "real-time", "memory"), "log mode", "circular"
    )
    if mode == "real-time" and "file_name" in opts:
        raise ArgvError(
            "real-time logging does not write a log file: drop --file-name or the real-time mode."
        )
    if mode not in ("real-time", "multi-file"):
        raise ArgvError(
            f"log mode '{mode}' is not supported by the emulator; "
            "use --log-mode real-time (-m real-time) or multi-file.",
            ERROR_NOT_SUPPORTED,
        )
    if mode != "multi-file":
        return mode, None
    path = Path(_one(opts, "file_name") or DEFAULT_FILE_NAME)
    if not path.suffix:
        path = path.with_suffix(".etl")
    path = path.absolute()
    if not path.parent.is_dir():
        raise ArgvError(f"the system cannot find the path specified: {path.parent}", ERROR_PATH_NOT_FOUND)
    return mode, str(path)


def _start_components(opts: dict[str, Any], components: list[dict[str, Any]]) -> str | list[int]:
    """--comp: "all", "nics" or sorted component ids that `pktmon list` knows."""
    if "comp" not in opts:
        return "all"
    raw_vals = opts["comp"]
    assert isinstance(raw_vals, list)
    tokens = [t for v in raw_vals for t in v.split(",") if t]
    if len(tokens) == 1 and tokens[0].lower() in ("all", "nics"):
        return str(tokens[0].lower())
    known = {c["id"] for c in components}
    ids = []
    for t in tokens:
        if not t.isdigit():
            raise ArgvError(f"invalid component '{t}': use all, nics or component ids from 'pktmon list'.")
        if int(t) not in known:
            raise ArgvError(f"component {t} not found; see 'pktmon list --all --include-hidden'.")
        ids.append(int(t))
    if not ids:
        raise ArgvError("parameter '--comp' requires a value.")
    return sorted(set(ids))


def _cmd_start(state_dir: Path, rest: list[str]) -> int:
    components = store.read_json(state_dir, store.COMPONENTS_FILE)
    options = _parse_start(rest, components)
    with store.locked(state_dir):
        st = store.read_json(state_dir, store.PKTMON_FILE)
        if st["running"]:
            # Also when the capturing process was killed: the session stays until `pktmon stop`.
            raise ArgvError(
                "Packet Monitor is already running; stop the running session with 'pktmon stop' first.",
                ERROR_BUSY,
            )
        number = int(st["sessions_started"]) + 1
        session = {
            "id": f"session-{number}",
            "number": number,
            "argv": ["pktmon", "start", *rest],
            "options": options,
            "started_at": time.time(),
        }
        st.update(running=True, session=session, stop_requested=False, sessions_started=number)
        store.write_json(state_dir, store.PKTMON_FILE, st)
        store.write_json(
            state_dir,
            store.PKTMON_COUNTERS_FILE,
            {
                "session": session["id"],
                "components": {},
                "generated": 0,
                "generation_done": False,
                "heartbeat": time.time(),
            },
        )
    if options["log_mode"] == "multi-file":
        return _start_logger(state_dir, session, st["filters"])
    return _Session(state_dir, session, [PacketFilter.from_dict(f) for f in st["filters"]]).run()


def _start_logger(state_dir: Path, session: dict[str, Any], filters: list[dict[str, Any]]) -> int:
    """File modes: a detached logger writes the files until `pktmon stop`; we return once it runs."""
    import subprocess

    root = Path(__file__).resolve().parents[2]
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "from winspect.emulator.pktmon_logger import main; sys.exit(main(sys.argv[2:]))"
    )
    kwargs: dict[str, Any] = {}
    if sys.platform == "win32":
        kwargs["creationflags"] = subprocess.DETACHED_PROCESS | subprocess.CREATE_NEW_PROCESS_GROUP
    else:
        kwargs["start_new_session"] = True
    subprocess.Popen(
        [sys.executable, "-S", "-c", code, str(root), str(state_dir), session["id"]],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        close_fds=True,
        **kwargs,
    )
    deadline = time.monotonic() + _STOP_WAIT_S
    while time.monotonic() < deadline:
        counters = store.read_json(state_dir, store.PKTMON_COUNTERS_FILE, None) or {}
        if counters.get("session") == session["id"] and counters.get("logger_pid"):
            break
        time.sleep(0.005)
    else:
        with store.locked(state_dir):
            st = store.read_json(state_dir, store.PKTMON_FILE)
            if (st.get("session") or {}).get("id") == session["id"]:
                st.update(running=False, stop_requested=False)
                store.write_json(state_dir, store.PKTMON_FILE, st)
        return fail("Error: the packet logger did not start.", ERROR_NOT_SUPPORTED)
    table = render_filter_list([PacketFilter.from_dict(f) for f in filters])
    print(render_status(session, table))
    return 0


def run_logger(state_dir: Path, session_id: str) -> int:
    """The body of the detached logger process of a file-mode session."""
    st = store.read_json(state_dir, store.PKTMON_FILE, None)
    session = (st or {}).get("session") or {}
    if not st or not st["running"] or session.get("id") != session_id:
        return 1
    filters = [PacketFilter.from_dict(f) for f in st["filters"]]
    return _Session(state_dir, session, filters).run()


def _session_alive(state_dir: Path) -> bool:
    counters = store.read_json(state_dir, store.PKTMON_COUNTERS_FILE, None) or {}
    return time.time() - float(counters.get("heartbeat", 0)) < _STALE_SESSION_S


class _TextOutput:
    """Real-time mode: the start banner, then the records' text on stdout."""

    def __init__(self, banner: str) -> None:
        self.banner = banner

    def begin(self) -> None:
        sys.stdout.write(self.banner + "\n")
        sys.stdout.flush()

    def write(self, records: list[str]) -> None:
        sys.stdout.write("\n".join(records) + "\n")
        sys.stdout.flush()

    def close(self) -> None:
        with contextlib.suppress(BrokenPipeError):
            sys.stdout.flush()


class _Session:
    """One capture session: generates, filters, counts, and prints (real-time) or logs to files.

    Real-time: the `pktmon start` process itself. File modes: the detached logger.
    """

    def __init__(self, state_dir: Path, session: dict[str, Any], filters: list[PacketFilter]) -> None:
        # Imported here: the other pktmon commands start faster without the generator.
        from winspect.emulator.traffic import GROUP_ID_BASE, TrafficGenerator, render_record

        self.state_dir = state_dir
        self.session = session
        self.opts = session["options"]
        self.filters = [CompiledFilter(f) for f in filters]
        traffic = store.read_json(state_dir, store.TRAFFIC_FILE)
        self.rate = float(traffic["rate"])
        self.gen = TrafficGenerator(
            store.read_json(state_dir, store.TOPOLOGY_FILE),
            f"{traffic['seed']}:{session['number']}",
            rate=self.rate,
            max_records=traffic["max_packets"],
            reproduce=_reproduction(filters) if traffic.get("reproduce") else None,
            reproduce_protocol=next((f.protocol for f in filters if f.protocol is not None), None),
        )
        components = store.read_json(state_dir, store.COMPONENTS_FILE)
        comp = self.opts["comp"]
        if comp == "all":
            self.comp_filter: set[int] | None = None
        elif comp == "nics":
            self.comp_filter = {c["id"] for c in components if c["role"] == "nic"}
        else:
            self.comp_filter = set(comp)
        self.stop = False
        self.counter_deltas: dict[str, dict[str, Any]] = {}
        self.vfp_deltas: dict[str, dict[str, dict[str, int]]] = {}
        self.generated = 0
        self.generation_done = False
        self.group_ids: dict[int, int] = {}
        self.id_rng = random.Random(f"pktmon-groups:{session['id']}")  # noqa: S311 - simulation
        self.next_group = GROUP_ID_BASE + session["number"] * 1_000_000 + self.id_rng.randrange(1000)
        self._flushed_done = False
        self.output: Any
        node = store.read_json(state_dir, store.NODE_FILE)
        clock = NodeClock(node.get("time_zone") or "UTC")
        if self.opts["log_mode"] == "real-time":
            self.render: Any = functools.partial(render_record, clock=clock)
            banner = render_start_banner(session, render_filter_list(filters))
            if node.get("language") == JAPANESE:
                record = self.render
                self.render = lambda *args, **kwargs: translate_record(record(*args, **kwargs))
                banner = translate_banner(banner)
            self.output = _TextOutput(banner)
        else:
            from winspect.emulator.pktmon_logfile import LogWriter, log_record

            self.render = functools.partial(log_record, clock=clock)
            self.output = LogWriter(
                Path(self.opts["file_name"]),
                int(self.opts["file_size"]) * int(traffic.get("log_megabyte", 1 << 20)),
            )

    # ---------------------------------------------------------- loop
    def run(self) -> int:
        self._install_signals()
        if self.opts["log_mode"] != "real-time":
            self._flush_counters(logger_pid=os.getpid())
        try:
            self.output.begin()
            self._loop()
        except BrokenPipeError:
            pipe_closed()  # the reader went away: end like Ctrl+C
        self.output.close()
        self._finish()
        return 0

    def _install_signals(self) -> None:
        def handler(signum: int, frame: Any) -> None:
            self.stop = True

        for name in ("SIGINT", "SIGTERM", "SIGBREAK"):
            sig = getattr(signal, name, None)
            if sig is not None:
                signal.signal(sig, handler)

    def _loop(self) -> None:
        out = self.output
        start_wall = time.time_ns()
        self.gen.wall_start_ns = start_wall
        records = self.gen.records()
        pending = None
        start_mono = time.monotonic_ns()
        last_flush = last_poll = time.monotonic()
        skip_print = self.opts["counters_only"]
        pkt_size = self.opts["pkt_size"]
        while not self.stop:
            now_ns = time.monotonic_ns() - start_mono
            lines = []
            budget = 5000
            while not self.generation_done and budget:
                if pending is None:
                    pending = next(records, None)
                    if pending is None:
                        self.generation_done = True
                        break
                if self.rate > 0 and pending.time_ns > now_ns:
                    break
                rec, pending = pending, None
                budget -= 1
                line = self._process(rec, start_wall, pkt_size, skip_print)
                if line is not None:
                    lines.append(line)
            if lines:
                out.write(lines)
            mono = time.monotonic()
            if mono - last_flush >= _FLUSH_S or (self.generation_done and self._dirty()):
                self._flush_counters()
                last_flush = mono
            if mono - last_poll >= _STOP_POLL_S:
                last_poll = mono
                if self._stop_requested():
                    break
            if self.generation_done or (self.rate > 0 and budget):
                wait = _STOP_POLL_S
                if pending is not None and self.rate > 0:
                    due = (pending.time_ns - (time.monotonic_ns() - start_mono)) / 1e9
                    wait = max(0.0, min(wait, due))
                time.sleep(wait)

    def _process(self, rec: Any, start_wall: int, pkt_size: int, skip_print: bool) -> str | None:
        gid = self.group_ids.get(rec.packet)
        if gid is None:
            gid = self.next_group
            self.next_group += self.id_rng.randrange(1, 4)
            self.group_ids[rec.packet] = gid
        if rec.last:
            del self.group_ids[rec.packet]
        self.generated += 1
        if rec.vfp_port is not None:
            self._count_vfp(rec)
        if self.comp_filter is not None and rec.component not in self.comp_filter:
            return None
        ptype = self.opts["type"]
        if (ptype == "flow" and rec.is_drop) or (ptype == "drop" and not rec.is_drop):
            return None
        fid = None
        if self.filters:
            fid = first_match(self.filters, rec.frame, rec.frame_type)
            if fid is None:
                return None
        self._count_pktmon(rec)
        if skip_print:
            return None
        size = rec.original_size
        logged = size if pkt_size == 0 else min(size, pkt_size)
        return self.render(rec, gid, start_wall + rec.time_ns, filter_id=fid, logged_size=logged)  # type: ignore[no-any-return]

    # ---------------------------------------------------------- counters
    def _count_pktmon(self, rec: Any) -> None:
        kind = "Drop" if rec.is_drop else "Flow"
        comp = self.counter_deltas.setdefault(str(rec.component), {})
        c = comp.setdefault(kind, {"Rx": [0, 0], "Tx": [0, 0]})
        c[rec.direction][0] += 1
        c[rec.direction][1] += rec.original_size
        if rec.is_drop:
            c["reason"] = rec.drop_reason

    def _count_vfp(self, rec: Any) -> None:
        d = self.vfp_deltas.setdefault(rec.vfp_port, {}).setdefault(rec.vfp_dir, {})
        f = rec.frame
        if rec.is_drop:
            if rec.drop_reason.startswith("VFP"):
                d["Dropped ACL packets"] = d.get("Dropped ACL packets", 0) + 1
            return
        d["Total packets"] = d.get("Total packets", 0) + 1
        d["Total bytes"] = d.get("Total bytes", 0) + f.frame_length
        if f.ip_proto == 6:
            fl = f.tcp_flags
            syn, ack = TCP_FLAG_BITS["SYN"], TCP_FLAG_BITS["ACK"]
            if fl & syn:
                key = "SYN-ACK packets" if fl & ack else "SYN packets"
                d[key] = d.get(key, 0) + 1
            if fl & TCP_FLAG_BITS["FIN"]:
                d["FIN packets"] = d.get("FIN packets", 0) + 1
            if fl & TCP_FLAG_BITS["RST"]:
                d["RST packets"] = d.get("RST packets", 0) + 1
        event = {
            "verified": "TCP Connections Verified",
            "closed_fin": "TCP Connections Closed by FIN",
            "reset": "TCP Connections Reset",
        }.get(rec.conn_event or "")
        if event:
            d[event] = d.get(event, 0) + 1

    def _dirty(self) -> bool:
        return bool(self.counter_deltas or self.vfp_deltas) or not self._flushed_done

    def _flush_counters(self, logger_pid: int | None = None) -> None:
        with store.locked(self.state_dir):
            counters = store.read_json(self.state_dir, store.PKTMON_COUNTERS_FILE, None)
            if counters is not None and counters.get("session") == self.session["id"]:
                if logger_pid is not None:
                    counters["logger_pid"] = logger_pid
                comps = counters.setdefault("components", {})
                for cid, kinds in self.counter_deltas.items():
                    for kind, delta in kinds.items():
                        cur = comps.setdefault(cid, {}).setdefault(kind, {"Rx": [0, 0], "Tx": [0, 0]})
                        for d in ("Rx", "Tx"):
                            cur[d][0] += delta[d][0]
                            cur[d][1] += delta[d][1]
                        if "reason" in delta:
                            cur["reason"] = delta["reason"]
                counters["generated"] = self.generated
                counters["generation_done"] = self.generation_done
                counters["heartbeat"] = time.time()
                store.write_json(self.state_dir, store.PKTMON_COUNTERS_FILE, counters)
            if self.vfp_deltas:
                vfp = store.read_json(self.state_dir, store.VFP_COUNTERS_FILE, {})
                for port, dirs in self.vfp_deltas.items():
                    for direction, values in dirs.items():
                        cur_dir = vfp.setdefault(port, {}).setdefault(direction, {})
                        for name, v in values.items():
                            cur_dir[name] = cur_dir.get(name, 0) + v
                store.write_json(self.state_dir, store.VFP_COUNTERS_FILE, vfp)
        self.counter_deltas = {}
        self.vfp_deltas = {}
        self._flushed_done = self.generation_done

    def _stop_requested(self) -> bool:
        st = store.read_json(self.state_dir, store.PKTMON_FILE)
        if st is None:  # the state directory is gone: nobody will ever stop us
            return True
        session = st.get("session") or {}
        return bool(not st["running"] or st["stop_requested"] or session.get("id") != self.session["id"])

    def _finish(self) -> None:
        if not self.state_dir.is_dir():
            return
        self._flush_counters()
        with store.locked(self.state_dir):
            st = store.read_json(self.state_dir, store.PKTMON_FILE)
            if (st.get("session") or {}).get("id") == self.session["id"]:
                st["running"] = False
                st["stop_requested"] = False
                store.write_json(self.state_dir, store.PKTMON_FILE, st)


# ---------------------------------------------------------------- stop, status, ...


def _request_stop(state_dir: Path) -> bool:
    """Asks the running session to end and waits for it; False when none ran."""
    with store.locked(state_dir):
        st = store.read_json(state_dir, store.PKTMON_FILE)
        if not st["running"]:
            return False
        session_id = (st.get("session") or {}).get("id")
        st["stop_requested"] = True
        store.write_json(state_dir, store.PKTMON_FILE, st)
    deadline = time.monotonic() + _STOP_WAIT_S
    while time.monotonic() < deadline:
        st = store.read_json(state_dir, store.PKTMON_FILE)
        if not st["running"] or (st.get("session") or {}).get("id") != session_id:
            return True
        if not _session_alive(state_dir):
            break  # the capturing process is gone (killed): end the session here
        time.sleep(0.01)
    with store.locked(state_dir):
        st = store.read_json(state_dir, store.PKTMON_FILE)
        if (st.get("session") or {}).get("id") == session_id:
            st["running"] = False
            st["stop_requested"] = False
            store.write_json(state_dir, store.PKTMON_FILE, st)
    return True


def _cmd_stop(state_dir: Path, rest: list[str]) -> int:
    if rest:
        raise ArgvError(f"unexpected value '{rest[0]}' for 'pktmon stop'.")
    if not _request_stop(state_dir):
        print(NOT_RUNNING)
    return 0


def _cmd_status(state_dir: Path, rest: list[str]) -> int:
    _parse_options(rest, {"-b": ("buffer_info", "0"), "--buffer-info": ("buffer_info", "0")}, "status")
    st = store.read_json(state_dir, store.PKTMON_FILE)
    if not st["running"]:
        print(NOT_RUNNING)
        return 0
    filters = render_filter_list([PacketFilter.from_dict(f) for f in st["filters"]])
    print(render_status(st["session"], filters))
    return 0


_COUNTERS_SPEC = {
    "-t": ("type", "1"),
    "--type": ("type", "1"),
    "-z": ("zero", "0"),
    "--zero": ("zero", "0"),
    "-i": ("include_hidden", "0"),
    "--include-hidden": ("include_hidden", "0"),
    "-r": ("drop_reason", "0"),
    "--drop-reason": ("drop_reason", "0"),
    "--live": ("live", "0"),
    "--refresh-rate": ("refresh_rate", "1"),
    "--json": ("json", "0"),
}


def _cmd_counters(state_dir: Path, rest: list[str]) -> int:
    opts = _parse_options(rest, _COUNTERS_SPEC, "counters")
    ctype = _choice(_one(opts, "type"), ("all", "flow", "drop"), "counter type", "all")
    if "refresh_rate" in opts:
        raw = _one(opts, "refresh_rate") or ""
        if not raw.isdigit() or not 1 <= int(raw) <= 30:
            raise ArgvError(f"invalid refresh rate '{raw}': use a number from 1 to 30.")
    if opts.get("live"):
        raise ArgvError("--live is not supported by the emulator.", ERROR_NOT_SUPPORTED)
    components = store.read_json(state_dir, store.COMPONENTS_FILE)
    counters = store.read_json(state_dir, store.PKTMON_COUNTERS_FILE, None)
    zero = bool(opts.get("zero"))
    if opts.get("json"):
        print(render_counters_json(components, counters, counter_type=ctype, zero=zero))
        return 0
    print(
        render_counters(
            components,
            counters,
            counter_type=ctype,
            include_hidden=bool(opts.get("include_hidden")),
            zero=zero,
            drop_reason=bool(opts.get("drop_reason")),
        )
    )
    return 0


def _cmd_list(state_dir: Path, rest: list[str]) -> int:
    opts = _parse_options(
        rest,
        {
            "-a": ("all", "0"),
            "--all": ("all", "0"),
            "-i": ("include_hidden", "0"),
            "--include-hidden": ("include_hidden", "0"),
            "--json": ("json", "0"),
        },
        "list",
    )
    components = store.read_json(state_dir, store.COMPONENTS_FILE)
    if opts.get("json"):
        print(render_list_json(components))
    else:
        print(
            render_list(
                components, all_types=bool(opts.get("all")), include_hidden=bool(opts.get("include_hidden"))
            )
        )
    return 0


_ETL2TXT_SPEC = {
    "-o": ("out", "1"),
    "--out": ("out", "1"),
    "-x": ("hex", "0"),
    "--hex": ("hex", "0"),
    "-t": ("timestamp_only", "0"),
    "--timestamp-only": ("timestamp_only", "0"),
    "-s": ("stats_only", "0"),
    "--stats-only": ("stats_only", "0"),
    "-p": ("tmfpath", "1"),
    "--tmfpath": ("tmfpath", "1"),
    "-m": ("metadata", "0"),
    "--metadata": ("metadata", "0"),
    "-b": ("brief", "0"),
    "--brief": ("brief", "0"),
    "-v": ("verbose", "1"),
    "--verbose": ("verbose", "1"),
    "-e": ("no_ethernet", "0"),
    "--no-ethernet": ("no_ethernet", "0"),
    "-l": ("vxlan", "1"),
    "--vxlan": ("vxlan", "1"),
}


def _cmd_etl2txt(state_dir: Path, rest: list[str]) -> int:
    """`pktmon etl2txt <file> [--out <name>] [--hex] [--timestamp-only] [--stats-only] ...`."""
    if not rest or rest[0].startswith("-"):
        raise ArgvError(
            "'pktmon etl2txt' needs the log file to convert: pktmon etl2txt <file> [--out <name>]."
        )
    source, opts = Path(rest[0]), _parse_options(rest[1:], _ETL2TXT_SPEC, "etl2txt")
    for key in ("metadata", "brief", "verbose", "no_ethernet", "vxlan"):
        if key in opts:
            raise ArgvError(
                f"etl2txt option --{key.replace('_', '-')} is not supported by the emulator.",
                ERROR_NOT_SUPPORTED,
            )
    node = store.read_json(state_dir, store.NODE_FILE)
    text, counts = convert_to_text(
        source,
        hex_dump=bool(opts.get("hex")),
        timestamp_only=bool(opts.get("timestamp_only")),
        clock=NodeClock(node.get("time_zone") or "UTC"),
    )
    lines = [
        "Processing...",
        "",
        f"Packets total:     {counts['total']}",
        f"Packet drop count: {counts['drops']}",
    ]
    if not opts.get("stats_only"):
        target = Path(_one(opts, "out") or source.with_suffix(".txt"))
        try:
            target.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise LogFileError(f"cannot write {target}: {exc.strerror or exc}", exc.errno or 5) from None
        lines += [f"Packets formatted: {counts['formatted']}", f"Formatted file:    {target}"]
    print("\n".join(lines))
    return 0


def _cmd_reset(state_dir: Path, rest: list[str]) -> int:
    _parse_options(rest, {"-counters": ("counters", "0"), "--counters": ("counters", "0")}, "reset")
    with store.locked(state_dir):
        counters = store.read_json(state_dir, store.PKTMON_COUNTERS_FILE, None)
        if counters is not None:
            counters["components"] = {}
            store.write_json(state_dir, store.PKTMON_COUNTERS_FILE, counters)
    print("All counters reset to zero.")
    return 0


def _cmd_unload(state_dir: Path, rest: list[str]) -> int:
    if rest:
        raise ArgvError(f"unexpected value '{rest[0]}' for 'pktmon unload'.")
    _request_stop(state_dir)
    with store.locked(state_dir):
        st = store.read_json(state_dir, store.PKTMON_FILE)
        st.update(running=False, stop_requested=False, filters=[])
        store.write_json(state_dir, store.PKTMON_FILE, st)
        (state_dir / store.PKTMON_COUNTERS_FILE).unlink(missing_ok=True)
    print("PktMon driver unloaded.")
    return 0


def _reproduction(filters: list[PacketFilter]) -> tuple[list[str], list[int]] | None:
    """The addresses (in the order the filters name them) and ports of the filters, when they name
    at least two single addresses: the user reproduces a connection between them meanwhile."""
    ips: list[str] = []
    ports: list[int] = []
    for f in filters:
        ips += [ip for ip in f.ips if "/" not in ip and ip not in ips]
        ports += [p for p in f.ports if p not in ports]
    return (ips, ports) if len(ips) >= 2 else None


if __name__ == "__main__":
    sys.exit(main())
