"""Stand-ins for what the image build downloads: Python's embeddable zip and Windows wheels.

The real ones come from python.org and the package index, which tests do not
reach. The stand-ins have the real layout: the zip's top-level files
(python.exe with a PE header naming its machine, python3XY.dll/.zip/._pth),
and wheels with their dist-info, tags in the file name and Requires-Dist.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from support.deploy import REPO

SCRIPT = REPO / "scripts" / "build_image_context.py"
AMD64 = 0x8664
ARM64 = 0xAA64


def pe_executable(machine: int = AMD64) -> bytes:
    data = bytearray(512)
    data[0:2] = b"MZ"
    struct.pack_into("<I", data, 0x3C, 0x80)
    data[0x80:0x84] = b"PE\0\0"
    struct.pack_into("<H", data, 0x84, machine)
    return bytes(data)


def embed_members(python: str = "3.11", machine: int = AMD64) -> dict[str, bytes]:
    tag = python.replace(".", "")
    return {
        "python.exe": pe_executable(machine),
        "pythonw.exe": pe_executable(machine),
        f"python{tag}.dll": b"dll",
        "python3.dll": b"dll",
        f"python{tag}.zip": b"PK\x05\x06" + b"\0" * 18,
        # as python.org ships it: site disabled
        f"python{tag}._pth": (
            f"python{tag}.zip\r\n.\r\n\r\n# Uncomment to run site.main() automatically\r\n#import site\r\n"
        ).encode(),
        "_socket.pyd": b"pyd",
        "vcruntime140.dll": b"dll",
        "LICENSE.txt": b"license",
    }


def make_embed(directory: Path, python: str = "3.11", machine: int = AMD64, patch: int = 9) -> Path:
    path = directory / f"python-{python}.{patch}-embed-amd64.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in embed_members(python, machine).items():
            zf.writestr(name, data)
    return path


@dataclass
class StubWheel:
    name: str
    version: str
    tag: str = "py3-none-any"
    requires: list[str] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)  # member path -> content (besides dist-info)

    @property
    def filename(self) -> str:
        return f"{self.name.replace('-', '_')}-{self.version}-{self.tag}.whl"

    @property
    def dist_info(self) -> str:
        return f"{self.name.replace('-', '_')}-{self.version}.dist-info"

    def members(self) -> dict[str, bytes]:
        meta = f"Metadata-Version: 2.1\nName: {self.name}\nVersion: {self.version}\n"
        meta += "".join(f"Requires-Dist: {r}\n" for r in self.requires)
        wheel = f"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: {self.tag}\n"
        files = dict(self.files) or {f"{self.name.replace('-', '_')}/__init__.py": b"# stub\n"}
        files[f"{self.dist_info}/METADATA"] = meta.encode()
        files[f"{self.dist_info}/WHEEL"] = wheel.encode()
        files[f"{self.dist_info}/RECORD"] = "".join(f"{n},,\n" for n in files).encode()
        return files

    def write(self, directory: Path) -> Path:
        path = directory / self.filename
        with zipfile.ZipFile(path, "w") as zf:
            for name, data in self.members().items():
                zf.writestr(name, data)
        return path


def site(member: str, dist_data: str) -> str:
    """Where a wheel member lands in the image context."""
    parts = member.split("/")
    if parts[0] == dist_data:
        base = {"purelib": "winspect/Lib/site-packages", "platlib": "winspect/Lib/site-packages"}
        base |= {"scripts": "winspect/Scripts", "data": "winspect"}
        return f"{base[parts[1]]}/{'/'.join(parts[2:])}"
    return f"winspect/Lib/site-packages/{member}"


def requirements_of(wheel: Path) -> list[Requirement]:
    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        text = zf.read(meta).decode()
    return [
        Requirement(line.split(":", 1)[1].strip())
        for line in text.splitlines()
        if line.startswith("Requires-Dist:")
    ]


def lowest_version(req: Requirement) -> str:
    """A version that satisfies the requirement (its lower bound when it has one)."""
    for spec in req.specifier:
        if spec.operator in (">=", "==", "~="):
            version = spec.version.replace(".*", "")
            if req.specifier.contains(version):
                return version
    assert req.specifier.contains("1.0"), f"no simple version satisfies {req}"
    return "1.0"


def dependency_stubs(winspect_wheel: Path) -> list[StubWheel]:
    """One stub per requirement of the winspect wheel (grpcio as a win_amd64 wheel)."""
    stubs = []
    for req in requirements_of(winspect_wheel):
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        name = canonicalize_name(req.name)
        tag = "cp311-cp311-win_amd64" if name == "grpcio" else "py3-none-any"
        module = re.sub(r"[^a-z0-9]", "_", name)
        stubs.append(StubWheel(name, lowest_version(req), tag, files={f"{module}/__init__.py": b"# stub\n"}))
    return stubs


def build_winspect_wheel(directory: Path) -> Path:
    """The winspect wheel of this checkout (pip wheel, no dependencies, no network).

    Built from a copy of the sources: setuptools reuses its build/ folder, so a
    wheel built in the checkout could carry files of an earlier build.
    """
    source = directory / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    shutil.copytree(REPO / "src", source / "src", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--wheel-dir",
         str(directory), str(source)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = directory.glob("winspect-*.whl")
    return wheel


def run_script(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
