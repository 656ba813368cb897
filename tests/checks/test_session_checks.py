"""The suite's own checks (support.plugin, support.machine), each run on a tiny test file in a
pytest of its own: a skip fails a CI=true run and is named; a missing machine package skips with
its reason, or fails under CI=true; a process left running is killed and named, by test or at the
end of the session, while a fixture's process ended at its teardown is not reported."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from support.processes import cmdline

TESTS = Path(__file__).resolve().parents[1]


def run_pytest(tmp_path: Path, source: str, *, ci: bool) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_tiny.py").write_text(textwrap.dedent(source))
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST")}
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), *filter(None, [env.get("PYTHONPATH")])])
    if ci:
        env["CI"] = "true"
    argv = [sys.executable, "-m", "pytest", "-p", "support.plugin", "-p", "no:cacheprovider"]
    return subprocess.run(
        [*argv, "-q", "--basetemp", str(tmp_path / "base"), "test_tiny.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )


def gone(pid_file: Path) -> bool:
    """Whether the process whose pid and marker argument the tiny test wrote has ended."""
    pid, marker = pid_file.read_text().split()
    return marker not in cmdline(int(pid))


SKIPS = """
    import pytest

    def test_runs():
        pass

    def test_skips():
        pytest.skip("no frobnicator on this machine")
"""


def test_a_skip_fails_a_ci_run_and_is_named(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, SKIPS, ci=True)
    assert result.returncode == 1, result.stdout
    assert "FAILED: 1 skipped under CI=true" in result.stdout
    assert "SKIPPED test_tiny.py::test_skips: no frobnicator on this machine\n" in result.stdout
    assert "1 passed, 1 skipped" in result.stdout


def test_without_ci_a_skip_passes_with_its_reason(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, SKIPS, ci=False)
    assert result.returncode == 0, result.stdout
    assert "1 skipped (with CI=true the run fails)" in result.stdout
    assert "SKIPPED test_tiny.py::test_skips: no frobnicator on this machine\n" in result.stdout


MISSING_TOOL = """
    from support.machine import require_tool

    def test_needs_a_tool():
        require_tool("winspect-no-such-tool", "winspect-no-such-package")
"""


def test_a_missing_machine_package_skips_with_the_reason(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, MISSING_TOOL, ci=False)
    assert result.returncode == 0, result.stdout
    assert (
        "SKIPPED test_tiny.py::test_needs_a_tool: winspect-no-such-tool is not installed: "
        "run `bash scripts/ci-deps` as root (apt install winspect-no-such-package)\n"
    ) in result.stdout


def test_a_missing_machine_package_fails_under_ci(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, MISSING_TOOL, ci=True)
    assert result.returncode == 1, result.stdout
    assert "1 failed" in result.stdout and "skipped" not in result.stdout
    assert (
        "winspect-no-such-tool is not installed: run `bash scripts/ci-deps` as root "
        "(apt install winspect-no-such-package) (CI=true: a missing machine package fails the run)"
    ) in result.stdout


def test_a_test_that_leaves_a_child_running_errors_naming_it(tmp_path: Path) -> None:
    source = """
        import subprocess

        def test_leaks(tmp_path_factory):
            proc = subprocess.Popen(["sleep", "301"])
            (tmp_path_factory.getbasetemp().parent / "pid").write_text(f"{proc.pid} 301")

        def test_after():
            pass
    """
    result = run_pytest(tmp_path, source, ci=False)
    assert result.returncode == 1, result.stdout
    assert "ERROR at teardown of test_leaks" in result.stdout
    assert "the test left processes running (now killed):" in result.stdout
    pid = (tmp_path / "pid").read_text().split()[0]
    assert f"pid {pid}: sleep 301 (started during test_tiny.py::test_leaks (call))" in result.stdout
    assert "2 passed, 1 error" in result.stdout and "test_after" not in result.stdout  # not blamed
    assert gone(tmp_path / "pid")


def test_a_detached_process_running_from_the_runs_temp_dir_is_found(tmp_path: Path) -> None:
    # Its parent exits (it belongs to init then) and its environment is cleared: only its
    # argument, a path in the run's temporary directory, says it is ours.
    source = """
        import subprocess, sys

        SLEEPER = "import sys, time; time.sleep(302)"
        DETACH = (
            "import subprocess, sys; "
            "print(subprocess.Popen(sys.argv[1:], env={}, start_new_session=True,"
            " stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).pid)"
        )

        def test_detaches(tmp_path, tmp_path_factory):
            out = subprocess.run([sys.executable, "-c", DETACH, sys.executable, "-c", SLEEPER, str(tmp_path)],
                                 capture_output=True, text=True, check=True).stdout
            (tmp_path_factory.getbasetemp().parent / "pid").write_text(f"{out.strip()} {tmp_path}")
    """
    result = run_pytest(tmp_path, source, ci=False)
    assert result.returncode == 1, result.stdout
    assert "ERROR at teardown of test_detaches" in result.stdout
    pid, where = (tmp_path / "pid").read_text().split()
    assert f"pid {pid}: {sys.executable} -c import sys, time; time.sleep(302) {where}" in result.stdout
    assert gone(tmp_path / "pid")


def test_a_fixtures_process_is_checked_after_the_session_fixtures_end(tmp_path: Path) -> None:
    # A module fixture ending its process at teardown is not reported; a session fixture that
    # forgets its process fails the run at the end (all tests passed), naming it.
    source = """
        import subprocess
        import pytest

        @pytest.fixture(scope="module")
        def owned():
            proc = subprocess.Popen(["sleep", "303"])
            yield
            proc.terminate()
            proc.wait()

        @pytest.fixture(scope="session")
        def forgotten(tmp_path_factory):
            proc = subprocess.Popen(["sleep", "304"])
            (tmp_path_factory.getbasetemp().parent / "pid").write_text(f"{proc.pid} 304")
            yield

        def test_one(owned, forgotten):
            pass

        def test_two(owned):
            pass
    """
    result = run_pytest(tmp_path, source, ci=False)
    assert result.returncode == 1, result.stdout
    assert "2 passed" in result.stdout and "error" not in result.stdout
    pid = (tmp_path / "pid").read_text().split()[0]
    assert "FAILED: processes of this run left running (now killed)" in result.stdout
    assert (
        f"at the end of the session: pid {pid}: sleep 304 (started during test_tiny.py::test_one (setup))"
        in result.stdout
    )
    assert "sleep 303" not in result.stdout
    assert gone(tmp_path / "pid")
