"""What the tests need from the machine, and the one policy when it is missing.

Some tests need a machine package (tshark, kubectl, make, etcd, a built
kube-apiserver). Without it they skip with the reason, so a developer's run
still says what it did not check; with CI=true they fail instead, so CI cannot
pass without having run them. `bash scripts/ci-deps` (as root) installs them.
"""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest

INSTALL_HINT = "run `bash scripts/ci-deps` as root"


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def unavailable(reason: str) -> NoReturn:
    """Something a test needs from the machine is missing: fail under CI=true, skip otherwise."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: a missing machine package fails the run)", pytrace=False)
    pytest.skip(reason)


def require_tool(name: str, package: str, *, also: tuple[str, ...] = ()) -> str:
    """The path of executable `name` (on PATH, else in the directories `also`), or `unavailable`."""
    path = shutil.which(name) or (shutil.which(name, path=os.pathsep.join(also)) if also else None)
    if path is None:
        unavailable(f"{name} is not installed: {INSTALL_HINT} (apt install {package})")
    return path
