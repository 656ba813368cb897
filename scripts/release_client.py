"""The client's release files, made by `make client` after PyInstaller's one-directory build.

    python scripts/release_client.py archive --dist out/bin/winspect --version 0.1.0 --out out
    python scripts/release_client.py krew --template deploy/krew/winspect.yaml --version 0.1.0 \\
        --archives out --url https://example.org/releases/v0.1.0 --out out/krew/winspect.yaml

`archive` adds `kubectl-winspect` and `kubectl_complete-winspect` next to the executable
(symbolic links; copies of the executable on Windows, which finds its files from where it is)
and packs the directory as winspect/ into out/winspect-VERSION-OS-ARCH.tar.gz (.zip on Windows),
OS and ARCH as krew names them, with ARCHIVE.sha256 beside it. `krew` fills the krew manifest
template: ${VERSION}, and one entry of `platforms` for every archive of VERSION in --archives (a
release gathers the archives built on each system there first).
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import re
import shutil
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import yaml

KREW_OS = {"linux": "linux", "darwin": "darwin", "win32": "windows"}
KREW_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
ROOT = "winspect"  # the directory the archives unpack to


def this_platform() -> tuple[str, str]:
    """(os, arch) of this machine, as krew's selectors name them."""
    os_name = KREW_OS.get(sys.platform)
    arch = KREW_ARCH.get(platform.machine().lower())
    if os_name is None or arch is None:
        sys.exit(f"release_client: no krew name for {sys.platform}/{platform.machine()}")
    return os_name, arch


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def add_plugin_names(dist: Path, windows: bool) -> None:
    """kubectl-winspect and kubectl_complete-winspect beside winspect: kubectl runs `kubectl
    winspect` through the first, and completes its words through the second."""
    exe = ".exe" if windows else ""
    for name in ("kubectl-winspect", "kubectl_complete-winspect"):
        plugin = dist / f"{name}{exe}"
        if plugin.is_symlink() or plugin.exists():
            plugin.unlink()
        if windows:
            shutil.copy2(dist / f"winspect{exe}", plugin)
        else:
            plugin.symlink_to(f"winspect{exe}")


def archive(dist: Path, version: str, out: Path) -> Path:
    os_name, arch = this_platform()
    windows = os_name == "windows"
    if not (dist / ("winspect.exe" if windows else "winspect")).is_file():
        sys.exit(f"release_client: {dist} holds no winspect executable (PyInstaller's --onedir output)")
    add_plugin_names(dist, windows)
    out.mkdir(parents=True, exist_ok=True)
    base = out / f"winspect-{version}-{os_name}-{arch}"
    if windows:
        path = base.with_name(base.name + ".zip")
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for file in sorted(dist.rglob("*")):
                zf.write(file, f"{ROOT}/{file.relative_to(dist).as_posix()}")
    else:
        path = base.with_name(base.name + ".tar.gz")
        with tarfile.open(path, "w:gz") as tf:
            tf.add(dist, ROOT, filter=_owned_by_root)
    path.with_name(path.name + ".sha256").write_text(f"{sha256(path)}  {path.name}\n")
    return path


def _owned_by_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def archives_of(directory: Path, version: str) -> list[tuple[Path, str, str]]:
    """(archive, os, arch) of every client archive of `version` in `directory`."""
    pattern = re.compile(
        rf"winspect-{re.escape(version)}-({'|'.join(KREW_OS.values())})-({'|'.join(sorted(set(KREW_ARCH.values())))})"
        r"\.(tar\.gz|zip)"
    )
    found = []
    for path in sorted(directory.iterdir()):
        match = pattern.fullmatch(path.name)
        if match:
            found.append((path, match.group(1), match.group(2)))
    return found


def _fill(value: Any, fields: dict[str, str]) -> Any:
    if isinstance(value, str):
        for key, text in fields.items():
            value = value.replace(f"${{{key}}}", text)
        return value
    if isinstance(value, dict):
        return {k: _fill(v, fields) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, fields) for v in value]
    return value


def krew_manifest(template: Path, version: str, directory: Path, url: str) -> str:
    doc = yaml.safe_load(template.read_text(encoding="utf-8"))
    found = archives_of(directory, version)
    if not found:
        sys.exit(f"release_client: no archive winspect-{version}-OS-ARCH.tar.gz or .zip in {directory}")
    entry = doc["spec"]["platforms"][0]
    doc["spec"]["platforms"] = [
        _fill(
            entry,
            {
                "OS": os_name,
                "ARCH": arch,
                "URI": f"{url.rstrip('/')}/{path.name}",
                "SHA256": sha256(path),
                "BIN": f"{ROOT}/winspect.exe" if os_name == "windows" else f"{ROOT}/winspect",
            },
        )
        for path, os_name, arch in found
    ]
    doc = _fill(doc, {"VERSION": version})
    leftover = sorted(set(re.findall(r"\$\{\w+\}", yaml.safe_dump(doc))))
    if leftover:
        sys.exit(f"release_client: {template} has placeholders nothing fills: {', '.join(leftover)}")
    return str(yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=100))


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks (`|`), as krew's manifests write them."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _str)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    pack = sub.add_parser("archive", help="pack the one-directory client")
    pack.add_argument("--dist", type=Path, required=True)
    pack.add_argument("--version", required=True)
    pack.add_argument("--out", type=Path, required=True)
    krew = sub.add_parser("krew", help="fill the krew manifest template")
    krew.add_argument("--template", type=Path, required=True)
    krew.add_argument("--version", required=True)
    krew.add_argument("--archives", type=Path, required=True)
    krew.add_argument("--url", required=True, help="where the archives are published (a directory URL)")
    krew.add_argument("--out", type=Path, required=True)
    opts = parser.parse_args()
    if opts.step == "archive":
        print(f"built {archive(opts.dist, opts.version, opts.out)}")
    else:
        text = krew_manifest(opts.template, opts.version, opts.archives, opts.url)
        opts.out.parent.mkdir(parents=True, exist_ok=True)
        opts.out.write_text(text, encoding="utf-8")
        print(f"built {opts.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
