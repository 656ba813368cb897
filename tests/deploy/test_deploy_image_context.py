"""The Windows image's build context (scripts/build_image_context.py): exactly the files that go
into the image, the python._pth that enables site-packages, the DaemonSet's command matching
the files, and clear refusals of a wrong Python, a wrong machine or missing wheels."""

from __future__ import annotations

import functools
import hashlib
import http.server
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from support.deploy import DATA, REPO
from support.image import (
    ARM64,
    StubWheel,
    build_winspect_wheel,
    dependency_stubs,
    embed_members,
    make_embed,
    run_script,
    site,
)


@pytest.fixture(scope="module")
def winspect_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_winspect_wheel(tmp_path_factory.mktemp("wheel"))


def server_set() -> set[str]:
    from packaging.requirements import Requirement

    lines = (REPO / "deploy" / "server-requirements.txt").read_text().splitlines()
    return {Requirement(ln).name.lower() for ln in lines if ln.strip() and not ln.startswith("#")}


def wheelhouse_for(winspect_wheel: Path, directory: Path) -> tuple[Path, list[StubWheel]]:
    """A wheelhouse with a stub of every dependency of the wheel (only the server's are chosen), a
    Windows-only extra dependency of grpcio, a Linux-only one that is not there, and a newer
    grpcio for Linux that must not be chosen."""
    house = directory / "wheelhouse"
    house.mkdir()
    every = dependency_stubs(winspect_wheel)
    for s in every:
        s.write(house)
    stubs = [s for s in every if s.name in server_set()]
    grpcio = next(s for s in stubs if s.name == "grpcio")
    grpcio.requires += [
        'winonly-dep>=2; platform_system == "Windows"',
        'linuxonly-dep; sys_platform == "linux"',
    ]
    grpcio.files["grpc/_cython/cygrpc.cp311-win_amd64.pyd"] = b"pyd"
    winonly = StubWheel(
        "winonly-dep",
        "2.1",
        files={
            "winonly_dep/__init__.py": b"",
            "winonly_dep-2.1.data/purelib/winonly_extra.py": b"# from the .data folder\n",
            "winonly_dep-2.1.data/scripts/winonly.exe": b"exe",
        },
    )
    linux_grpcio = StubWheel(
        "grpcio", "9.0.0", "cp311-cp311-manylinux_2_17_x86_64", files={"grpc/linux.so": b""}
    )
    chosen = [*stubs, winonly]
    for s in [*chosen, linux_grpcio]:
        s.write(house)
    return house, chosen


def expected_files(winspect_wheel: Path, chosen: list[StubWheel]) -> set[str]:
    files = {f"winspect/{name}" for name in embed_members()}
    with zipfile.ZipFile(winspect_wheel) as zf:
        files |= {site(n, "winspect-0.1.0.data") for n in zf.namelist() if not n.endswith("/")}
    for stub in chosen:
        data = f"{stub.name.replace('-', '_')}-{stub.version}.data"
        files |= {site(n, data) for n in stub.members()}
    return files | {pyc(f) for f in files if f.startswith(SITE) and f.endswith(".py")}


SITE = "winspect/Lib/site-packages/"


def pyc(source: str) -> str:
    folder, _, name = source.rpartition("/")
    return f"{folder}/__pycache__/{name[:-3]}.{sys.implementation.cache_tag}.pyc"


def built_context(winspect_wheel: Path, tmp_path: Path) -> Path:
    """A context made offline from the stub wheelhouse and embeddable zip; the script succeeded."""
    house, _ = wheelhouse_for(winspect_wheel, tmp_path)
    out = tmp_path / "image"
    argv = ["--wheel", winspect_wheel, "--python-embed", make_embed(tmp_path), "--out", out]
    proc = run_script(*argv, "--wheelhouse", house, "--offline")
    assert proc.returncode == 0, proc.stderr
    return out


def listed(out: Path) -> dict[str, tuple[int, str]]:
    rows = {}
    for line in (out / "files.txt").read_text().splitlines():
        if line.startswith("#"):
            continue
        path, size, digest = line.split("\t")
        rows[path] = (int(size), digest)
    return rows


def test_context_holds_exactly_python_winspect_and_its_windows_dependencies(
    winspect_wheel: Path, tmp_path: Path
) -> None:
    house, chosen = wheelhouse_for(winspect_wheel, tmp_path)
    embed = make_embed(tmp_path)
    out = tmp_path / "image"
    proc = run_script(
        "--wheel", winspect_wheel, "--python-embed", embed, "--out", out, "--wheelhouse", house, "--offline"
    )
    assert proc.returncode == 0, proc.stderr

    on_disk = {p.relative_to(out).as_posix() for p in (out / "winspect").rglob("*") if p.is_file()}
    assert on_disk == expected_files(winspect_wheel, chosen)
    assert set(listed(out)) == on_disk
    for rel, (size, digest) in listed(out).items():
        data = (out / rel).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (size, digest)
    assert sorted(p.name for p in out.iterdir()) == [
        ".winspect-image-context",
        "Dockerfile",
        "files.txt",
        "winspect",
    ]
    assert (out / "Dockerfile").read_bytes() == (REPO / "deploy" / "Dockerfile").read_bytes()

    sp = out / "winspect" / "Lib" / "site-packages"
    assert (sp / "grpc" / "_cython" / "cygrpc.cp311-win_amd64.pyd").is_file()  # the win_amd64 grpcio
    assert not (sp / "grpc" / "linux.so").exists()  # not the newer manylinux one
    assert (sp / "winonly_extra.py").read_text() == "# from the .data folder\n"
    assert (out / "winspect" / "Scripts" / "winonly.exe").is_file()
    assert not list(sp.glob("linuxonly*"))
    assert "winonly-dep 2.1" in proc.stderr and "grpcio 1.85.1" in proc.stderr
    # the client's dependencies stay out of the node's image
    for client_only in ("click", "lightkube", "cryptography", "distlib"):
        assert not list(sp.glob(f"{client_only}*")), client_only


def test_site_packages_are_precompiled_with_unchecked_hashes(winspect_wheel: Path, tmp_path: Path) -> None:
    out = built_context(winspect_wheel, tmp_path)
    sp = out / SITE
    main = sp / "winspect" / "server" / "__pycache__" / f"main.{sys.implementation.cache_tag}.pyc"
    header = main.read_bytes()[:16]
    import importlib.util

    assert header[:4] == importlib.util.MAGIC_NUMBER
    assert int.from_bytes(header[4:8], "little") == 0b01  # hash-based, source not checked
    no_pyc = [p for p in sp.rglob("*.py") if not (p.parent / "__pycache__").is_dir()]
    assert not no_pyc


def test_precompiling_for_another_python_is_refused_before_anything_is_built(
    winspect_wheel: Path, tmp_path: Path
) -> None:
    house, _ = wheelhouse_for(winspect_wheel, tmp_path)
    other = "3.10" if sys.version_info[:2] != (3, 10) else "3.12"
    out = tmp_path / "image"
    argv = ["--wheel", winspect_wheel, "--python-embed", make_embed(tmp_path), "--out", out]
    proc = run_script(*argv, "--wheelhouse", house, "--offline", "--python", other)
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert proc.returncode == 1
    assert (
        f"precompiling for Python {other} needs Python {other} on the build machine (this is {here}"
        in proc.stderr
    )
    assert "--no-compile" in proc.stderr and not out.exists()


def test_pth_adds_site_packages_and_enables_site(winspect_wheel: Path, tmp_path: Path) -> None:
    out = built_context(winspect_wheel, tmp_path)
    raw = (out / "winspect" / "python311._pth").read_bytes()
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")  # Windows line ends
    lines = [ln for ln in raw.decode().splitlines() if ln and not ln.startswith("#")]
    assert lines == ["python311.zip", ".", "Lib\\site-packages", "import site"]


def test_daemonset_command_and_prestop_name_files_of_the_image(winspect_wheel: Path, tmp_path: Path) -> None:
    out = built_context(winspect_wheel, tmp_path)
    ds = yaml.safe_load((DATA / "daemonset.yaml").read_text())
    container = ds["spec"]["template"]["spec"]["containers"][0]
    for argv in (container["command"], container["lifecycle"]["preStop"]["exec"]["command"]):
        exe, flag, module = argv[:3]
        assert exe == "winspect\\python.exe" and flag == "-m"
        assert (out / exe.replace("\\", "/")).read_bytes()[:2] == b"MZ"
        assert (out / "winspect" / "Lib" / "site-packages" / (module.replace(".", "/") + ".py")).is_file()
    dockerfile = (REPO / "deploy" / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["winspect\\\\python.exe", "-m", "winspect.server.main"]' in dockerfile
    assert "COPY winspect/ /winspect/" in dockerfile
    assert "FROM ${BASE_IMAGE}" in dockerfile
    assert "mcr.microsoft.com/oss/kubernetes/windows-host-process-containers-base-image" in dockerfile


@pytest.mark.parametrize(
    ("python", "machine", "message"),
    [
        ("3.12", 0x8664, "holds Python 3.12 (python312.dll) but the image is built for Python 3.11"),
        ("3.11", ARM64, "python.exe is machine 0xaa64, expected an amd64 build"),
    ],
)
def test_wrong_embeddable_zip_is_refused(
    winspect_wheel: Path, tmp_path: Path, python: str, machine: int, message: str
) -> None:
    house, _ = wheelhouse_for(winspect_wheel, tmp_path)
    embed = make_embed(tmp_path, python, machine)
    out = tmp_path / "image"
    proc = run_script(
        "--wheel", winspect_wheel, "--python-embed", embed, "--out", out, "--wheelhouse", house, "--offline"
    )
    assert proc.returncode == 1
    assert message in proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert not out.exists()


def test_offline_without_a_needed_wheel_names_it(winspect_wheel: Path, tmp_path: Path) -> None:
    house, _ = wheelhouse_for(winspect_wheel, tmp_path)
    for wheel in house.glob("protobuf-*.whl"):
        wheel.unlink()
    for wheel in house.glob("winonly_dep-*.whl"):
        wheel.unlink()
    proc = run_script(
        "--wheel",
        winspect_wheel,
        "--python-embed",
        make_embed(tmp_path),
        "--out",
        tmp_path / "o",
        "--wheelhouse",
        house,
        "--offline",
    )
    assert proc.returncode == 1
    assert "no win_amd64 wheel for CPython 3.11 in" in proc.stderr
    assert "protobuf" in proc.stderr and 'winonly-dep>=2; platform_system == "Windows"' in proc.stderr
    assert "linuxonly" not in proc.stderr


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_dir(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    root = tmp_path / "www"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_embeddable_zip_by_url_is_downloaded_and_a_dead_url_explained(
    winspect_wheel: Path, tmp_path: Path, http_dir: tuple[Path, str]
) -> None:
    root, base = http_dir
    make_embed(root)
    house, _ = wheelhouse_for(winspect_wheel, tmp_path)
    out = tmp_path / "image"
    url = f"{base}/python-3.11.9-embed-amd64.zip"
    proc = run_script(
        "--wheel", winspect_wheel, "--python-embed", url, "--out", out, "--wheelhouse", house, "--offline"
    )
    assert proc.returncode == 0, proc.stderr
    assert f"downloading {url}" in proc.stderr
    assert (out / "winspect" / "python.exe").is_file()

    missing = f"{base}/python-3.11.8-embed-amd64.zip"
    proc = run_script(
        "--wheel", winspect_wheel, "--python-embed", missing, "--out", out, "--wheelhouse", house, "--offline"
    )
    assert proc.returncode == 1
    assert f"cannot download {missing} (HTTP 404 File not found)" in proc.stderr
    assert "--python-embed ~/Downloads/python-3.11.9-embed-amd64.zip" in proc.stderr


def test_an_existing_folder_that_is_not_a_context_is_left_alone(winspect_wheel: Path, tmp_path: Path) -> None:
    house, _ = wheelhouse_for(winspect_wheel, tmp_path)
    out = tmp_path / "precious"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    proc = run_script(
        "--wheel",
        winspect_wheel,
        "--python-embed",
        make_embed(tmp_path),
        "--out",
        out,
        "--wheelhouse",
        house,
        "--offline",
    )
    assert proc.returncode == 1
    assert f"{out} exists and is not an image context made by this script" in proc.stderr
    assert (out / "keep.txt").read_text() == "mine"


def test_the_wheel_ships_the_manifests_install_applies(winspect_wheel: Path) -> None:
    with zipfile.ZipFile(winspect_wheel) as zf:
        names = set(zf.namelist())
    missing = [
        n
        for n in ("namespace.yaml", "serviceaccount.yaml", "daemonset.yaml")
        if f"winspect/deploy/data/{n}" not in names
    ]
    assert not missing, (
        f"the wheel lacks winspect/deploy/data/{missing}: `winspect install` from a pip install would fail; "
        'pyproject.toml needs "deploy/data/*.yaml" in [tool.setuptools.package-data] winspect'
    )
