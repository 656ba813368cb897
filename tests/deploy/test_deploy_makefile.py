"""The Makefile: `make server` builds the wheel and the image context under OUT, `make clean`
removes them, `make archive krew` pack a client directory and fill the krew manifest, and
`make all` / `make client` run the documented steps (the PyInstaller build of the one-directory
client takes about a minute and needs the `build` extra: it is shown with `make -n`, and
`make client` itself checks that the executable runs `--help` and `version`)."""

from __future__ import annotations

import hashlib
import platform
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
import yaml
from support.deploy import REPO
from support.image import dependency_stubs, make_embed
from support.machine import require_tool

import winspect


def make(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    gnu_make = require_tool("make", "make")
    return subprocess.run(
        [gnu_make, "--no-print-directory", "-C", str(REPO), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "out"


def test_make_server_then_clean(tmp_path: Path, out: Path) -> None:
    # The dependencies' Windows wheels would come from pip download; stand-ins from a wheelhouse here.
    first = make(f"PY={sys.executable}", f"OUT={out}", "wheel")
    assert first.returncode == 0, first.stderr
    wheel = out / f"winspect-{winspect.__version__}-py3-none-any.whl"
    house = tmp_path / "wheelhouse"
    house.mkdir()
    for stub in dependency_stubs(wheel):
        stub.write(house)
    embed = make_embed(tmp_path)
    build_dir = tmp_path / "build"
    build_dir.mkdir()

    proc = make(
        f"PY={sys.executable}",
        f"OUT={out}",
        f"PYTHON_EMBED={embed}",
        f"WHEELHOUSE={house}",
        "OFFLINE=1",
        "server",
    )
    assert proc.returncode == 0, proc.stderr
    assert wheel.is_file()
    with zipfile.ZipFile(wheel) as zf:
        assert "winspect/server/main.py" in zf.namelist()
    assert (out / "image" / "Dockerfile").is_file()
    assert (out / "image" / "winspect" / "python.exe").is_file()
    assert (
        out / "image" / "winspect" / "Lib" / "site-packages" / "winspect" / "server" / "main.py"
    ).is_file()
    assert (
        f"docker buildx build --platform windows/amd64 --push -t REGISTRY/winspectserv:0.1.0 {out}/image"
        in (proc.stdout)
    )

    proc = make(f"OUT={out}", f"BUILD_DIR={build_dir}", "clean")
    assert proc.returncode == 0, proc.stderr
    assert not out.exists() and not build_dir.exists()


def test_make_server_without_the_embeddable_zip_says_how_to_give_it(out: Path) -> None:
    proc = make(
        f"PY={sys.executable}", f"OUT={out}", f"PYTHON_EMBED={out}/nowhere.zip", "OFFLINE=1", "server"
    )
    assert proc.returncode != 0
    assert f"--python-embed {out}/nowhere.zip: no such file" in proc.stderr
    assert not (out / "image").exists()


def test_make_all_builds_client_and_server_artifacts_under_out(out: Path) -> None:
    proc = make("-n", f"PY={sys.executable}", f"OUT={out}", "all")
    assert proc.returncode == 0, proc.stderr
    steps = proc.stdout
    assert f"pip wheel --quiet --no-deps --no-build-isolation --wheel-dir {out} ." in steps
    assert f"-m build --sdist --no-isolation --outdir {out} ." in steps
    assert "-m PyInstaller" in steps and "--onedir --name winspect" in steps
    assert f"--distpath {out}/bin" in steps
    assert f"{out}/bin/winspect/winspect --help" in steps
    assert f"{out}/bin/winspect/winspect version --client" in steps
    assert f"scripts/release_client.py archive --dist {out}/bin/winspect --version 0.1.0 --out {out}" in steps
    assert f"{out}/bin/winspect/kubectl-winspect --help" in steps
    assert (
        "scripts/release_client.py krew --template deploy/krew/winspect.yaml --version 0.1.0 "
        f"--archives {out} --url 'file://{out}' --out {out}/krew/winspect.yaml"
    ) in steps.replace("\\\n\t", "")
    assert "scripts/build_image_context.py" in steps and f"--out {out}/image" in steps
    # the wheel is built once even though client and server both need it
    assert steps.count("pip wheel") == 1


def test_make_client_installs_the_build_tools_into_a_venv_first(out: Path) -> None:
    proc = make("-n", "VENV=/tmp/winspect-build-venv", f"OUT={out}", "client")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "python3 -m venv /tmp/winspect-build-venv"
    assert "/tmp/winspect-build-venv/bin/python -m pip install --quiet -e '.[build]'" in lines
    assert any(line.startswith("/tmp/winspect-build-venv/bin/python -m PyInstaller") for line in lines)


def test_make_archive_and_krew_pack_the_client_and_fill_the_manifest(out: Path) -> None:
    # A stand-in for PyInstaller's one-directory output (its real build takes a minute).
    dist = out / "bin" / "winspect"
    (dist / "_internal").mkdir(parents=True)
    (dist / "_internal" / "base_library.zip").write_bytes(b"stand-in")
    exe = dist / "winspect"
    exe.write_text('#!/bin/sh\necho "run as $(basename "$0")"\n')
    exe.chmod(0o755)
    # An archive built on another system, gathered into OUT for the release.
    other = out / "winspect-0.1.0-darwin-arm64.tar.gz"
    other.write_bytes(b"the macOS build")
    url = "https://downloads.example.org/winspect/v0.1.0"

    proc = make(f"PY={sys.executable}", f"OUT={out}", f"RELEASE_URL={url}", "archive", "krew")
    assert proc.returncode == 0, proc.stderr

    arch = {"x86_64": "amd64", "aarch64": "arm64"}[platform.machine()]
    archive = out / f"winspect-0.1.0-linux-{arch}.tar.gz"
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert (out / f"{archive.name}.sha256").read_text() == f"{digest}  {archive.name}\n"
    with tarfile.open(archive) as tf:
        members = {m.name: m for m in tf.getmembers()}
    assert set(members) == {
        "winspect",
        "winspect/winspect",
        "winspect/kubectl-winspect",
        "winspect/kubectl_complete-winspect",
        "winspect/_internal",
        "winspect/_internal/base_library.zip",
    }
    assert members["winspect/winspect"].isfile() and members["winspect/winspect"].mode & 0o111
    for name in ("kubectl-winspect", "kubectl_complete-winspect"):
        assert members[f"winspect/{name}"].issym() and members[f"winspect/{name}"].linkname == "winspect"

    manifest_text = (out / "krew" / "winspect.yaml").read_text()
    assert "${" not in manifest_text
    manifest = yaml.safe_load(manifest_text)
    assert manifest["apiVersion"] == "krew.googlecontainertools.github.com/v1alpha2"
    assert manifest["kind"] == "Plugin" and manifest["metadata"] == {"name": "winspect"}
    spec = manifest["spec"]
    assert spec["version"] == "v0.1.0"
    assert "kubectl winspect install --image REGISTRY/winspectserv:0.1.0" in spec["caveats"]
    assert spec["platforms"] == [
        {
            "selector": {"matchLabels": {"os": "darwin", "arch": "arm64"}},
            "uri": f"{url}/winspect-0.1.0-darwin-arm64.tar.gz",
            "sha256": hashlib.sha256(b"the macOS build").hexdigest(),
            "bin": "winspect/winspect",
        },
        {
            "selector": {"matchLabels": {"os": "linux", "arch": arch}},
            "uri": f"{url}/{archive.name}",
            "sha256": digest,
            "bin": "winspect/winspect",
        },
    ]
    assert spec["platforms"][1]["bin"] in members  # what krew links as kubectl-winspect


def test_make_krew_without_an_archive_says_what_it_looked_for(out: Path) -> None:
    out.mkdir()
    proc = make(f"PY={sys.executable}", f"OUT={out}", "krew")
    assert proc.returncode != 0
    assert f"no archive winspect-0.1.0-OS-ARCH.tar.gz or .zip in {out}" in proc.stderr
