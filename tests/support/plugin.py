"""Session checks of the suites (a pytest plugin, loaded by tests/conftest.py).

No skip under CI: with CI=true a run in which any test skipped fails, naming each skipped test
and its reason (without CI the same list is printed, and the run passes).

No process left running: a test must end every process it starts, and its children.
- Processes a test started through support.processes.track are ended (with their children)
  before the test's fixtures are torn down, whatever the outcome.
- After each test's teardown, a process of this run (support.processes) that started during the
  test and still runs is killed and the test errors, naming it. Processes started while a module
  or session fixture was being set up, and all they start, belong to that fixture and are left.
- After the session's fixtures are finalised, any process of this run still running is killed and
  the run fails, naming each with the test during which it started.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass

import pytest

from support import processes
from support.machine import in_ci
from support.processes import RUN_TOKEN_ENV, Proc

GRACE_TEST_S = 5.0  # for processes of a test to finish exiting after its teardown
GRACE_SESSION_S = 10.0
TICK_S = 0.01  # /proc gives start times in clock ticks, rounded down


@dataclass
class _Window:
    nodeid: str
    start: float
    end: float = float("inf")

    def holds(self, when: float) -> bool:
        return self.start - TICK_S <= when <= self.end


class SessionChecks:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.token = f"{os.getpid()}-{secrets.token_hex(8)}"
        os.environ[RUN_TOKEN_ENV] = self.token
        self.temp: str | None = None
        self.skipped: list[tuple[str, str]] = []
        self.windows: list[_Window] = []
        self.current: _Window | None = None
        self.leaks: list[str] = []
        self.fixture_owned: set[tuple[int, float]] = set()  # started by module/session fixtures
        self.enabled = processes.supported()

    # ------------------------------------------------------------ which processes are ours

    def _ours(self, procs: dict[int, Proc]) -> dict[int, Proc]:
        """This run's running processes (not pytest itself), with everything below them."""
        me = os.getpid()
        below = {p.pid for p in processes.descendants(procs, me)}
        ours: dict[int, Proc] = {}
        for proc in procs.values():
            if proc.pid == me or not proc.running:
                continue
            if (
                proc.pid in below
                or processes.environ(proc.pid).get(RUN_TOKEN_ENV) == self.token
                or (self.temp and processes.points_into(processes.cmdline(proc.pid), self.temp))
            ):
                ours[proc.pid] = proc
        for proc in list(ours.values()):
            ours.update({p.pid: p for p in processes.descendants(procs, proc.pid) if p.running})
        return ours

    def _temp_dir(self) -> None:
        if self.temp is None:
            factory = getattr(self.config, "_tmp_path_factory", None)
            if factory is not None:
                self.temp = str(factory.getbasetemp().resolve())

    def _leaked_by(self, window: _Window) -> list[Proc]:
        """Running processes of this run that `window`'s test started and did not end."""
        procs = processes.table()
        candidates = {p.pid: p for p in procs.values() if p.running and p.start >= window.start - TICK_S}
        if not candidates:
            return []
        ours = self._ours(procs)
        leaked = []
        for proc in candidates.values():
            if proc.pid not in ours:
                continue
            top = proc  # the oldest ancestor that is ours: who started this tree
            while (parent := ours.get(top.ppid)) is not None:
                top = parent
            if window.holds(top.start) and (top.pid, top.start) not in self.fixture_owned:
                leaked.append(proc)
        return leaked

    @staticmethod
    def _wait_gone(find: Callable[[], list[Proc]], grace: float) -> list[Proc]:
        """What `find` still finds after up to `grace` seconds (processes may be exiting)."""
        deadline = time.monotonic() + grace
        left: list[Proc] = find()
        while left and time.monotonic() < deadline:
            time.sleep(0.1)
            left = find()
        return left

    def _report(self, procs: list[Proc]) -> list[str]:
        lines = []
        for proc in sorted(procs, key=lambda p: p.start):
            started = processes.environ(proc.pid).get("PYTEST_CURRENT_TEST") or next(
                (w.nodeid for w in self.windows if w.holds(proc.start)), None
            )
            where = f" (started during {started})" if started else ""
            lines.append(f"pid {proc.pid}: {processes.describe(proc.pid)}{where}")
        return lines

    # ------------------------------------------------------------ hooks

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, object, object]:
        self._temp_dir()
        self.current = _Window(item.nodeid, processes.boot_clock())
        self.windows.append(self.current)
        try:
            return (yield)
        finally:
            self.current.end = processes.boot_clock()
            self.current = None

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(self, fixturedef: pytest.FixtureDef[object]) -> Generator[None, object, object]:
        if not self.enabled or self.current is None or fixturedef.scope == "function":
            return (yield)
        start = processes.boot_clock()
        try:
            return (yield)
        finally:
            # What runs now and started since belongs to this fixture, with all it starts later.
            started = self._ours(processes.table()).values()
            self.fixture_owned |= {(p.pid, p.start) for p in started if p.start >= start - TICK_S}

    def _end_leaks_of_test(self) -> list[str]:
        window = self.current
        if not self.enabled or window is None:
            return []
        left = self._wait_gone(lambda: self._leaked_by(window), GRACE_TEST_S)
        lines = self._report(left)
        processes.kill(left)
        self.leaks += [f"{window.nodeid}: {line}" for line in lines]
        return lines

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Generator[None, object, object]:
        processes.end_tracked()
        try:
            result = yield
        except BaseException:
            self._end_leaks_of_test()  # reported in the summary; the teardown's own error goes first
            raise
        lines = self._end_leaks_of_test()
        if lines:
            pytest.fail("the test left processes running (now killed):\n  " + "\n  ".join(lines), False)
        return result

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.skipped:
            self.skipped.append((report.nodeid, _reason(report)))

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.skipped:
            self.skipped.append((report.nodeid, _reason(report)))

    @pytest.hookimpl(trylast=True)  # after the runner's: the session's fixtures are finalised by then
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        failed = False
        if self.enabled:
            self._temp_dir()
            left = self._wait_gone(lambda: list(self._ours(processes.table()).values()), GRACE_SESSION_S)
            self.leaks += [f"at the end of the session: {line}" for line in self._report(left)]
            processes.kill(left)
            failed = bool(self.leaks)
        if self.skipped and in_ci():
            failed = True
        if failed and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        tr = terminalreporter
        if self.skipped:
            if in_ci():
                tr.write_sep("=", f"FAILED: {len(self.skipped)} skipped under CI=true", red=True, bold=True)
            else:
                tr.write_sep("=", f"{len(self.skipped)} skipped (with CI=true the run fails)", yellow=True)
            for nodeid, reason in self.skipped:
                tr.write_line(f"SKIPPED {nodeid}: {reason}")
        if self.leaks:
            tr.write_sep("=", "FAILED: processes of this run left running (now killed)", red=True, bold=True)
            for line in self.leaks:
                tr.write_line(line)


def _reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    wasxfail = getattr(report, "wasxfail", None)
    if wasxfail is not None:
        return f"xfail: {wasxfail}"
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(SessionChecks(config), "winspect-session-checks")
