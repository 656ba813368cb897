"""The README's examples, run as written: every shell block marked `<!-- tested: ... -->` is taken
from README.md, and each of its commands runs in bash (pipes, `$(...)` and `export` as a user's
shell has them) with the `winspect` of this environment on PATH, against the e2e sandbox ("against
the sandbox") or in an empty home directory ("in a fresh home", where the block brings up its own
sandbox). Each command's exit code and one line of its output are checked; a command added to a
marked block without an expectation here fails the test, and so does an expectation left over."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.e2e import E2E, wait_until
from support.processes import end_process, track

README = Path(__file__).resolve().parents[2] / "README.md"
MARK = re.compile(
    r"^<!-- tested: (against the sandbox|in a fresh home) -->\n```shell\n(.*?)^```", re.M | re.S
)

# Runs one command line, then writes the environment it leaves (so `export` carries to the next one)
# and, in the same shell, what `probe` prints (for commands that only change the shell).
SHELL = """set -o pipefail
eval "$1"
rc=$?
env -0 > "$2"
eval "$3"
exit $rc
"""


@dataclass(frozen=True)
class Example:
    starts: str  # the command as the README writes it, or its beginning
    code: int = 0
    out: str | None = None  # a line of stdout (regular expression, searched line by line)
    err: str | None = None  # a line of stderr
    every_line: bool = False  # `out` matches every line of stdout, not only one
    until_ctrl_c: bool = False  # runs in the background until the next command is done, then Ctrl+C
    probe: str = ""


@dataclass(frozen=True)
class Block:
    heading: str
    where: str
    commands: list[str]


NODES = "aksnpwin000000,aksnpwin000001,aksnpwin000002"
SUMMARY = r"^  aksnpwin00000\d: \d+ packets? received, capture duration elapsed, node cleaned up$"

EXAMPLES: dict[str, list[Example]] = {
    "The sandbox": [
        Example("winspect sandbox up ", out=r"^sandbox ready: 3 Windows nodes at "),
        Example("export KUBECONFIG=~/.local/state/winspect/sandbox/kubeconfig"),
        Example("winspect capture pods -l app=win-webserver -d 5", out=r" TCP .*win-webserver-", err=SUMMARY),
        Example("kubectl get nodes -o wide ", out=r"^aksnpwin000002 +Ready "),
        Example("winspect sandbox status", out=r"aksnpwin000000"),
        Example("winspect sandbox down ", out=r"."),
        Example("winspect sandbox run -- hns all ", out=r"^Node aksnpwin000000 "),
    ],
    "Commands": [
        Example(
            f"winspect capture nodes {NODES} -t TCP -d 10 ",
            out=r"^\d\d:\d\d:\d\d\.\d{3} aksnpwin.* TCP ",
            err=SUMMARY,
        ),
        Example(
            "winspect capture nodes aksnpwin000000 --counters-only -d 5 ",
            out=r"^Node aksnpwin000000$",
            err=SUMMARY,
        ),
        Example(
            "winspect capture nodes aksnpwin000000,aksnpwin000002 -t TCP ",
            code=130,
            err=r"^winspect: interrupted: capture stopped on every node",
            until_ctrl_c=True,
        ),
        Example("winspect counter", out=r"^Node aksnpwin000002"),
        Example(
            "winspect vfp-counter --pod win-webserver-2ce8dbe32-ldjbb --detailed",
            out=r"^pod default/win-webserver-2ce8dbe32-ldjbb \(10\.224\.0\.15\)$",
        ),
        Example("winspect hns all --json", out=r'^  "command": "hns",$'),
    ],
    "Commands (2)": [
        Example(
            "winspect capture pods web/iis-frontend-69b2ba90c-5cx7l,win-client-7727b149cf-h8mgq ",
            out=r" TCP +(web/iis-frontend|win-client)-.*:80\b",
            err=SUMMARY,
        ),
        Example("winspect capture all --type drop -d 10 ", out=r"✗ VFP: ACL deny$", err=r"^Drops:$"),
        Example(
            "winspect capture all -t TCP_SYN -d 5 -o json | jq -c",
            out=r'^\{"node":"aksnpwin00000\d","src_ip":"[\d.]+","dst_ip":"[\d.]+","dst_port":\d+\}$',
            every_line=True,  # no row of nulls from the summary records
        ),
        Example(
            "winspect hns loadbalancers --nodes aksnpwin000000 -o wide",
            out=r"^10\.0\.0\.10 +UDP 53->53 +kube-system/coredns-",
        ),
        Example(
            "winspect --target aksnpwin000000=$(kubectl get node ", out=r"^azure +L2Bridge +10\.224\.0\.0/16 "
        ),
        Example("winspect version", out=r"^Client: winspect \d"),
        Example(
            "source <(winspect completion bash) ",
            out=r"^complete .*-F _winspect_completion winspect$",
            probe="complete -p winspect",
        ),
    ],
    "As a kubectl plugin": [
        Example("kubectl winspect capture nodes aksnpwin000000 -t TCP -d 5", out=r" TCP ", err=SUMMARY),
        Example(
            "kubectl winspect vfp-counter iis-frontend-69b2ba90c-5cx7l -n web --context ",
            out=r"^pod web/iis-frontend-69b2ba90c-5cx7l \(10\.224\.0\.19\)$",
        ),
    ],
    "Wireshark": [
        Example(
            "winspect capture all -d 10 -w cluster.pcapng ",
            err=r"^  pcapng: \d+ packets written to cluster\.pcapng",
        ),
        Example(
            "winspect capture nodes aksnpwin000000,aksnpwin000001 -t TCP -d 5 -w - -q | tshark -r - -Y ",
            out=r"^ +1 0\.0+ .* TCP ",
        ),
    ],
}


def readme_blocks() -> list[Block]:
    """The marked blocks, named by the heading above them (numbered when a heading has several),
    with their commands: continuation lines joined, comment-only and blank lines left out."""
    text = README.read_text(encoding="utf-8")
    blocks: list[Block] = []
    for match in MARK.finditer(text):
        heading = re.findall(r"^#{2,4} (.+)$", text[: match.start()], re.M)[-1]
        seen = sum(1 for b in blocks if b.heading.split(" (")[0] == heading)
        name = f"{heading} ({seen + 1})" if seen else heading
        commands: list[str] = []
        pending = ""
        for line in match.group(2).splitlines():
            if line.endswith("\\"):
                pending += line[:-1]
                continue
            line, pending = pending + line, ""
            if line.strip() and not line.lstrip().startswith("#"):
                commands.append(line.strip())
        blocks.append(Block(name, match.group(1), commands))
    return blocks


def test_every_marked_block_has_its_expectations() -> None:
    blocks = readme_blocks()
    assert [b.heading for b in blocks] == list(EXAMPLES)
    for block in blocks:
        starts = [e.starts for e in EXAMPLES[block.heading]]
        assert len(block.commands) == len(starts), (block.heading, block.commands)
        for command, start in zip(block.commands, starts, strict=True):
            assert command.startswith(start), (block.heading, command, start)


@dataclass
class Ran:
    code: int
    out: str
    err: str


class Shell:
    """Commands of one block, in order, as one user's shell runs them (environment carried)."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env = env
        self.cwd = cwd
        self.count = 0

    def _argv(self, command: str, probe: str) -> tuple[list[str], Path]:
        self.count += 1
        env_file = self.cwd / f".env-{self.count}"
        return ["bash", "-c", SHELL, "bash", command, str(env_file), probe], env_file

    def _carry(self, env_file: Path) -> None:
        if env_file.exists():
            pairs = (item.split("=", 1) for item in env_file.read_text().split("\0") if "=" in item)
            self.env = {k: v for k, v in pairs if k not in ("_", "SHLVL", "OLDPWD")}

    def run(self, command: str, probe: str = "") -> Ran:
        argv, env_file = self._argv(command, probe)
        proc = subprocess.run(
            argv, capture_output=True, text=True, env=self.env, cwd=self.cwd, timeout=110, check=False
        )
        self._carry(env_file)
        return Ran(proc.returncode, proc.stdout, proc.stderr)

    def start(self, command: str) -> tuple[subprocess.Popen[Any], Path]:
        argv, _ = self._argv(command, "")
        logs = self.cwd / f".background-{self.count}"
        proc = track(
            subprocess.Popen(
                argv,
                stdout=(logs.with_suffix(".out")).open("w"),
                stderr=(logs.with_suffix(".err")).open("w"),
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        )
        return proc, logs

    @staticmethod
    def interrupt(proc: subprocess.Popen[Any], logs: Path) -> Ran:
        """Ctrl+C to the command's process group, as a terminal sends it."""
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
        return Ran(
            proc.returncode, logs.with_suffix(".out").read_text(), logs.with_suffix(".err").read_text()
        )


def check(example: Example, command: str, ran: Ran) -> None:
    context = (
        f"{command}\n--- exit {ran.code}\n--- stdout:\n{ran.out[-3000:]}\n--- stderr:\n{ran.err[-3000:]}"
    )
    assert ran.code == example.code, context
    for pattern, text in ((example.out, ran.out), (example.err, ran.err)):
        if pattern is not None:
            assert re.search(pattern, text, re.M), f"no line matching {pattern!r} in\n{context}"
    if example.every_line and example.out is not None:
        wrong = [line for line in ran.out.splitlines() if not re.search(example.out, line)]
        assert not wrong, f"lines not matching {example.out!r}: {wrong[:5]}\n{context}"


def user_env(base: dict[str, str]) -> dict[str, str]:
    """`winspect` and `kubectl-winspect` of this environment first on PATH."""
    return {**base, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{base.get('PATH', os.defpath)}"}


def fresh_home_env(home: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("WINSPECT_", "XDG_")) and k not in ("KUBECONFIG", "HOME")
    }
    # Sandboxes claim their loopback addresses in the user's cache: share it with the other sandboxes.
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return user_env({**env, "HOME": str(home), "XDG_CACHE_HOME": cache, "NO_COLOR": "1"})


def run_block(shell: Shell, block: Block) -> None:
    background: tuple[Example, str, subprocess.Popen[Any], Path] | None = None
    try:
        for example, command in zip(EXAMPLES[block.heading], block.commands, strict=True):
            if example.until_ctrl_c:
                proc, logs = shell.start(command)
                background = (example, command, proc, logs)
                err = logs.with_suffix(".err")
                wait_until("the capture to start", lambda err=err: "capturing on" in err.read_text(), 60)
                continue
            check(example, command, shell.run(command, example.probe))
            if background is not None:
                bg_example, bg_command, proc, logs = background
                background = None
                check(bg_example, bg_command, Shell.interrupt(proc, logs))
    finally:
        if background is not None:
            end_process(background[2])


@pytest.mark.parametrize("block", readme_blocks(), ids=lambda b: b.heading)
def test_readme_block_runs_as_written(block: Block, e2e: E2E, tmp_path: Path) -> None:
    if block.where == "against the sandbox":
        run_block(Shell(user_env(e2e.env), tmp_path), block)
        return
    home = tmp_path / "home"
    home.mkdir()
    shell = Shell(fresh_home_env(home), tmp_path)
    try:
        run_block(shell, block)
    finally:
        subprocess.run(
            [str(Path(sys.executable).parent / "winspect"), "sandbox", "down"],
            env=fresh_home_env(home),
            capture_output=True,
            timeout=60,
            check=False,
        )
