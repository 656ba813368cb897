#!/usr/bin/env python3
"""Prepare the docker build context of the winspectserv Windows image (deploy/Dockerfile).

The HostProcess base image has no shell, so nothing can run during the image
build: everything is laid out here, on the build machine, and the Dockerfile
only copies it.

    out/image/
      Dockerfile                      deploy/Dockerfile
      files.txt                       every file of the image, with size and sha256
      winspect/                       -> C:\\...\\<sandbox mount>\\winspect in the container
        python.exe, python3XY.dll, python3XY.zip, ...   Python's embeddable distribution
        python3XY._pth                rewritten: adds Lib\\site-packages, enables `import site`
        Lib/site-packages/            winspect and the server's dependencies, unpacked from
                                      win_amd64 wheels, with precompiled __pycache__/*.pyc

Steps: (1) take the embeddable zip (python-3.11.x-embed-amd64.zip) from a
path or a URL and check that it is an amd64 build of the expected Python;
(2) collect the wheels: the winspect wheel plus the server's dependencies
(deploy/server-requirements.txt, not the wheel's own Requires-Dist, which
carries the client's too) for Windows amd64 / CPython 3.11 (`pip download
--platform win_amd64 --only-binary=:all:`, which NEEDS NETWORK ACCESS to the
package index), or, with --offline, only those already in --wheelhouse;
(3) resolve the dependency closure with Windows environment markers (pip
evaluates markers for the machine it runs on, so Windows-only dependencies
would be missed: they are downloaded in a second round); (4) unpack the
wheels into Lib/site-packages and precompile them (.pyc, unchecked-hash:
valid whatever the files' times in the image; this needs the image's
Python version on the build machine, or --no-compile); (5) check that the
DaemonSet's command and preStop hook (src/winspect/deploy/data/daemonset.yaml)
name files that exist.

    python scripts/build_image_context.py --wheel out/winspect-0.1.0-py3-none-any.whl \\
        --python-embed ~/Downloads/python-3.11.9-embed-amd64.zip
    python scripts/build_image_context.py --wheel out/winspect-0.1.0-py3-none-any.whl \\
        --python-embed https://www.python.org/ftp/python/3.11.9/python-3.11.9-embed-amd64.zip

Exit code 0 on success, 1 with a one-line reason otherwise.
"""

from __future__ import annotations

import argparse
import compileall
import dataclasses
import email.parser
import hashlib
import py_compile
import re
import shutil
import struct
import subprocess
import sys
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "deploy" / "Dockerfile"
DAEMONSET = REPO / "src" / "winspect" / "deploy" / "data" / "daemonset.yaml"
SERVER_REQUIREMENTS = REPO / "deploy" / "server-requirements.txt"
MARKER = ".winspect-image-context"
PYTHON_DIR = "winspect"  # the folder of the image holding Python (the DaemonSet runs winspect\python.exe)
SITE_PACKAGES = "Lib/site-packages"
DEFAULT_PYTHON = "3.11"
PLATFORM = "win_amd64"
PE_MACHINE_AMD64 = 0x8664


class Failure(Exception):
    """A reason to stop, shown as one line."""


def say(message: str) -> None:
    print(f"build_image_context: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the embeddable distribution


@dataclass(frozen=True)
class Embed:
    path: Path
    python: str  # "3.11"
    full_version: str  # "3.11.9" when the file name tells, else "3.11.0"


def fetch_embed(source: str, cache: Path) -> Path:
    """A local path to the embeddable zip: `source` itself, or downloaded from the URL into `cache`."""
    if not re.match(r"^https?://", source):
        path = Path(source).expanduser()
        if not path.is_file():
            raise Failure(f"--python-embed {source}: no such file")
        return path
    name = source.rstrip("/").rsplit("/", 1)[-1] or "python-embed.zip"
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / name
    if target.is_file() and zipfile.is_zipfile(target):
        say(f"using {target} (downloaded before)")
        return target
    say(f"downloading {source}")
    try:
        with urllib.request.urlopen(source, timeout=60) as resp, open(f"{target}.part", "wb") as out:  # noqa: S310
            shutil.copyfileobj(resp, out)
    except (urllib.error.URLError, OSError) as exc:
        if isinstance(exc, urllib.error.HTTPError):
            reason: object = f"HTTP {exc.code} {exc.reason}"
        else:
            reason = getattr(exc, "reason", exc)
        raise Failure(
            f"cannot download {source} ({reason}): download it on a machine that can and pass the file, "
            "e.g. --python-embed ~/Downloads/python-3.11.9-embed-amd64.zip (make server PYTHON_EMBED=...)"
        ) from None
    Path(f"{target}.part").replace(target)
    return target


def pe_machine(data: bytes) -> int | None:
    """The machine field of a Windows PE executable's header, or None when it is not one."""
    if len(data) < 0x40 or data[:2] != b"MZ":
        return None
    (offset,) = struct.unpack_from("<I", data, 0x3C)
    if len(data) < offset + 6 or data[offset : offset + 4] != b"PE\0\0":
        return None
    machine: int = struct.unpack_from("<H", data, offset + 4)[0]
    return machine


def check_embed(path: Path, python: str) -> Embed:
    """Check that `path` is Python `python`'s embeddable distribution for amd64."""
    if not zipfile.is_zipfile(path):
        raise Failure(f"{path} is not a zip file (expected python-{python}.x-embed-amd64.zip)")
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        dlls = sorted(n for n in names if re.fullmatch(r"python3\d+\.dll", n))
        if "python.exe" not in names or not dlls:
            raise Failure(
                f"{path} is not Python's embeddable distribution: no python.exe and python3XY.dll at its top"
            )
        found = f"3.{dlls[0][len('python3') : -len('.dll')]}"
        if found != python:
            raise Failure(
                f"{path} holds Python {found} ({dlls[0]}) but the image is built for Python {python} "
                f"(its wheels are cp{python.replace('.', '')}): use python-{python}.x-embed-amd64.zip"
            )
        tag = python.replace(".", "")
        for needed in (f"python{tag}.zip", f"python{tag}._pth"):
            if needed not in names:
                raise Failure(f"{path} lacks {needed}: not an embeddable distribution of Python {python}")
        machine = pe_machine(zf.read("python.exe")[:4096])
        if machine != PE_MACHINE_AMD64:
            shown = "not a Windows executable" if machine is None else f"machine 0x{machine:04x}"
            raise Failure(f"{path}: python.exe is {shown}, expected an amd64 build (embed-amd64.zip)")
    match = re.search(rf"python-({re.escape(python)}\.\d+)", path.name)
    return Embed(path, python, match.group(1) if match else f"{python}.0")


def pth_text(python: str) -> str:
    """python3XY._pth: the stdlib zip, the Python folder, Lib\\site-packages, and `import site`."""
    tag = python.replace(".", "")
    return (
        f"python{tag}.zip\n"
        ".\n"
        "Lib\\site-packages\n"
        "# Enables site: .pth files in Lib\\site-packages (added by build_image_context.py)\n"
        "import site\n"
    )


# ---------------------------------------------------------------- wheels


def _packaging() -> object:
    try:
        import packaging  # noqa: F401
    except ImportError:
        raise Failure(
            "the Python module 'packaging' is missing: install the build tools (pip install -e '.[build]')"
        ) from None
    return None


@dataclass(frozen=True)
class Wheel:
    path: Path
    name: str  # canonical
    version: str
    requires: tuple[str, ...]  # Requires-Dist lines


def read_wheel(path: Path) -> Wheel:
    from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

    try:
        name, version, _build, _tags = parse_wheel_filename(path.name)
    except InvalidWheelFilename:
        raise Failure(f"{path.name} is not a wheel file name") from None
    with zipfile.ZipFile(path) as zf:
        metas = [n for n in zf.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)]
        if len(metas) != 1:
            raise Failure(f"{path.name}: expected one .dist-info/METADATA, found {len(metas)}")
        meta = email.parser.Parser().parsestr(zf.read(metas[0]).decode("utf-8"))
    return Wheel(path, canonicalize_name(name), str(version), tuple(meta.get_all("Requires-Dist") or ()))


def target_tags(python: str) -> list[object]:
    from packaging import tags

    major, minor = (int(x) for x in python.split("."))
    interp = f"cp{major}{minor}"
    return [
        *tags.cpython_tags((major, minor), abis=[interp, "abi3", "none"], platforms=[PLATFORM]),
        *tags.compatible_tags((major, minor), interpreter=interp, platforms=[PLATFORM]),
    ]


def wheel_fits(path: Path, python: str) -> bool:
    from packaging.utils import parse_wheel_filename

    supported = set(target_tags(python))
    return any(t in supported for t in parse_wheel_filename(path.name)[3])


def marker_environment(embed: Embed) -> dict[str, str]:
    """Environment markers as CPython on Windows amd64 evaluates them."""
    return {
        "implementation_name": "cpython",
        "implementation_version": embed.full_version,
        "os_name": "nt",
        "platform_machine": "AMD64",
        "platform_python_implementation": "CPython",
        "platform_release": "",
        "platform_system": "Windows",
        "platform_version": "",
        "python_full_version": embed.full_version,
        "python_version": embed.python,
        "sys_platform": "win32",
    }


def resolve(root: Wheel, wheelhouse: Path, embed: Embed) -> tuple[list[Wheel], list[str]]:
    """The wheels the root needs on Windows (root first), and the requirements nothing in the house meets."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    env = marker_environment(embed)
    candidates: dict[str, list[Wheel]] = {}
    for path in sorted(wheelhouse.glob("*.whl")):
        if path.resolve() == root.path.resolve() or not wheel_fits(path, embed.python):
            continue
        w = read_wheel(path)
        candidates.setdefault(w.name, []).append(w)

    chosen: dict[str, Wheel] = {root.name: root}
    missing: list[str] = []
    queue: list[tuple[Wheel, set[str]]] = [(root, set())]
    while queue:
        wheel, extras = queue.pop(0)
        for line in wheel.requires:
            try:
                req = Requirement(line)
            except InvalidRequirement:
                raise Failure(f"{wheel.path.name}: cannot parse requirement {line!r}") from None
            wanted = req.marker is None or any(
                req.marker.evaluate({**env, "extra": extra}) for extra in (extras or {""})
            )
            if not wanted:
                continue
            name = canonicalize_name(req.name)
            if name in chosen:
                if not req.specifier.contains(chosen[name].version, prereleases=True):
                    missing.append(f"{req} (have {chosen[name].version})")
                continue
            fits = [
                w for w in candidates.get(name, []) if req.specifier.contains(w.version, prereleases=True)
            ]
            if not fits:
                missing.append(str(req))
                continue
            from packaging.version import Version

            best = max(fits, key=lambda w: Version(w.version))
            chosen[name] = best
            queue.append((best, set(req.extras)))
    return list(chosen.values()), sorted(set(missing))


def pip_download(requirements: list[str], wheelhouse: Path, python: str) -> None:
    """Windows amd64 wheels for CPython `python` into the wheelhouse (needs network access)."""
    tag = python.replace(".", "")
    argv = [
        sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--quiet",
        "--only-binary=:all:", "--platform", PLATFORM, "--python-version", python,
        "--implementation", "cp", "--abi", f"cp{tag}", "--abi", "abi3", "--abi", "none",
        "--dest", str(wheelhouse), *requirements,
    ]  # fmt: skip
    say(f"pip download (needs network access to the package index): {' '.join(requirements)}")
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-3:]
        raise Failure(
            "pip download of the Windows wheels failed: " + " | ".join(tail) + " (it needs network access "
            "to the package index; or fill --wheelhouse yourself and pass --offline)"
        )


def server_requirements(path: Path = SERVER_REQUIREMENTS) -> list[str]:
    """The requirement lines of the server's dependency set (comments and blank lines dropped)."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line]


def collect_wheels(root_path: Path, wheelhouse: Path, embed: Embed, offline: bool) -> list[Wheel]:
    # The winspect wheel with the server's dependencies in place of its own (client's included).
    root = dataclasses.replace(read_wheel(root_path), requires=tuple(server_requirements()))
    if not wheel_fits(root_path, embed.python):
        raise Failure(f"{root_path.name} does not install on CPython {embed.python} {PLATFORM}")
    wheelhouse.mkdir(parents=True, exist_ok=True)
    if not offline:
        pip_download(list(root.requires), wheelhouse, embed.python)
    for _round in range(5):
        wheels, missing = resolve(root, wheelhouse, embed)
        if not missing:
            return wheels
        if offline:
            break
        pip_download(missing, wheelhouse, embed.python)
    raise Failure(
        f"no {PLATFORM} wheel for CPython {embed.python} in {wheelhouse} satisfies: {', '.join(missing)}"
    )


def _safe_member(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    drive = bool(path.parts) and ":" in path.parts[0]
    if not path.parts or path.is_absolute() or ".." in path.parts or drive or "\\" in name:
        raise Failure(f"refusing wheel member {name!r}: it leaves the target folder")
    return path


def unpack_wheel(wheel: Path, python_dir: Path) -> None:
    """Install a wheel by unpacking it, as pip would for a Windows prefix at `python_dir`."""
    site = python_dir / SITE_PACKAGES
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            member = _safe_member(info.filename)
            parts = member.parts
            if parts[0].endswith(".data") and len(parts) > 2:
                scheme, rest = parts[1], PurePosixPath(*parts[2:])
                base = {
                    "purelib": site,
                    "platlib": site,
                    "scripts": python_dir / "Scripts",
                    "data": python_dir,
                }
                if scheme not in base:  # headers: not needed at run time
                    continue
                target = base[scheme] / rest
            else:
                target = site / member
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)


def check_can_compile(python: str) -> None:
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if here != python:
        raise Failure(
            f"precompiling for Python {python} needs Python {python} on the build machine (this is {here}; "
            f".pyc files are version-specific): run the script with python{python}, or pass --no-compile"
        )


def precompile(site: Path) -> None:
    """Byte-compile site-packages for the image's Python: a node imports without writing .pyc."""
    ok = compileall.compile_dir(
        str(site),
        quiet=1,
        workers=1,
        # the hash of the source, never its time: files in an image may carry any time
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    if not ok:
        raise Failure(f"byte-compiling {site} failed (see the messages above)")


# ---------------------------------------------------------------- the DaemonSet's command


def daemonset_commands(daemonset: Path = DAEMONSET) -> list[list[str]]:
    """The container command (with args) and the preStop command of the winspectserv container."""
    import yaml

    doc = yaml.safe_load(daemonset.read_text(encoding="utf-8"))
    c = doc["spec"]["template"]["spec"]["containers"][0]
    return [list(c["command"]) + list(c.get("args", [])), list(c["lifecycle"]["preStop"]["exec"]["command"])]


def check_command(context: Path, argv: list[str]) -> None:
    """The executable and the `-m` module of a DaemonSet command exist in the image context."""
    exe = PurePosixPath(argv[0].replace("\\", "/"))
    if exe.is_absolute() or not (context / exe).is_file():
        raise Failure(f"the DaemonSet runs {argv[0]!r}, which is not a file of the image ({context / exe})")
    if "-m" in argv:
        module = argv[argv.index("-m") + 1]
        python_dir = context / exe.parent
        rel = Path(*module.split("."))
        site = python_dir / SITE_PACKAGES
        if not ((site / rel).with_suffix(".py").is_file() or (site / rel / "__main__.py").is_file()):
            raise Failure(f"the DaemonSet runs `-m {module}`, which is not in {site}")


# ---------------------------------------------------------------- the context


def file_list(context: Path) -> list[tuple[str, int, str]]:
    """(path, size, sha256) of every file under context/winspect, sorted, with / separators."""
    rows = []
    for path in sorted((context / PYTHON_DIR).rglob("*")):
        if path.is_file():
            rel = path.relative_to(context).as_posix()
            rows.append((rel, path.stat().st_size, hashlib.sha256(path.read_bytes()).hexdigest()))
    return rows


def prepare_out(out: Path) -> None:
    if out.exists():
        if not (out / MARKER).is_file() and any(out.iterdir()):
            raise Failure(f"{out} exists and is not an image context made by this script: remove it first")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / MARKER).write_text("made by scripts/build_image_context.py; removed on the next run\n")


def build(
    wheel: Path,
    embed_source: str,
    out: Path,
    wheelhouse: Path,
    *,
    offline: bool = False,
    python: str = DEFAULT_PYTHON,
    cache: Path | None = None,
    compile_pyc: bool = True,
) -> list[tuple[str, int, str]]:
    """Lay out the image context in `out`; returns its file list."""
    _packaging()
    if not wheel.is_file():
        raise Failure(f"--wheel {wheel}: no such file (make server builds it)")
    if compile_pyc:
        check_can_compile(python)
    embed = check_embed(fetch_embed(embed_source, cache or wheelhouse.parent / "downloads"), python)
    wheels = collect_wheels(wheel, wheelhouse, embed, offline)

    prepare_out(out)
    shutil.copyfile(DOCKERFILE, out / "Dockerfile")
    python_dir = out / PYTHON_DIR
    with zipfile.ZipFile(embed.path) as zf:
        for info in zf.infolist():
            _safe_member(info.filename)
        zf.extractall(python_dir)
    tag = python.replace(".", "")
    (python_dir / f"python{tag}._pth").write_text(pth_text(python), newline="\r\n")
    for w in wheels:
        unpack_wheel(w.path, python_dir)
    if compile_pyc:
        precompile(python_dir / SITE_PACKAGES)
    for argv in daemonset_commands():
        check_command(out, argv)

    rows = file_list(out)
    with open(out / "files.txt", "w", encoding="utf-8") as f:
        f.write("# path\tsize\tsha256 (every file the image carries, from scripts/build_image_context.py)\n")
        for rel, size, digest in rows:
            f.write(f"{rel}\t{size}\t{digest}\n")
    total = sum(size for _, size, _ in rows)
    names = ", ".join(f"{w.name} {w.version}" for w in wheels)
    say(f"{out}: {len(rows)} files, {total / 1e6:.1f} MB; Python {embed.full_version}; wheels: {names}")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Prepare out/image, the build context of the winspectserv Windows image."
    )
    parser.add_argument("--wheel", required=True, type=Path, help="the winspect wheel (out/winspect-*.whl)")
    parser.add_argument(
        "--python-embed",
        required=True,
        metavar="PATH_OR_URL",
        help="python-3.11.x-embed-amd64.zip: a local file, or an http(s) URL to download",
    )
    parser.add_argument(
        "--out", type=Path, default=REPO / "out" / "image", help="the context folder (out/image)"
    )
    parser.add_argument(
        "--wheelhouse",
        type=Path,
        default=REPO / "out" / "wheelhouse-win_amd64",
        help="where the Windows wheels are downloaded to / taken from (out/wheelhouse-win_amd64)",
    )
    parser.add_argument(
        "--offline", action="store_true", help="do not run pip download: use only the wheels in --wheelhouse"
    )
    parser.add_argument("--python", default=DEFAULT_PYTHON, help="the Python version of the image (3.11)")
    parser.add_argument(
        "--no-compile", action="store_true", help="ship no precompiled .pyc (the node compiles at each start)"
    )
    args = parser.parse_args(argv)
    if not re.fullmatch(r"3\.\d+", args.python):
        parser.error(f"--python {args.python!r}: expected 3.N, e.g. 3.11")
    try:
        build(
            args.wheel,
            args.python_embed,
            args.out,
            args.wheelhouse,
            offline=args.offline,
            python=args.python,
            compile_pyc=not args.no_compile,
        )
    except Failure as exc:
        say(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
