"""The Windows CPython of the lane (scripts/windows-python): PSF-signed files only, fail closed on
anything else, and exactly the server's dependency set in its site-packages."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from support.wine import REPO

SCRIPT = [sys.executable, str(REPO / "scripts" / "windows-python")]


def _verify(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SCRIPT, "verify", *map(str, files)], capture_output=True, text=True, check=False)


def test_the_prepared_python_is_signed_by_the_psf(prepared_python: Path) -> None:
    folder = prepared_python.parent
    signed = [folder / "python.exe", folder / "python311.dll", folder / "_socket.pyd", folder / "_ssl.pyd"]
    done = _verify(*signed)
    assert (done.returncode, done.stderr) == (0, "")


def test_a_changed_byte_or_another_signer_is_refused(prepared_python: Path, tmp_path: Path) -> None:
    tampered = tmp_path / "python.exe"
    shutil.copyfile(prepared_python, tampered)
    data = bytearray(tampered.read_bytes())
    data[5000] ^= 0xFF  # in the code, covered by the signature's digest
    tampered.write_bytes(bytes(data))
    done = _verify(tampered)
    assert done.returncode == 1
    assert "python.exe: no valid Authenticode signature of the Python Software Foundation" in done.stderr
    assert "MISMATCH" in done.stderr
    # Microsoft's runtime DLL: signed, but not by the PSF (and its root is not in Debian's store)
    done = _verify(prepared_python.parent / "vcruntime140.dll")
    assert done.returncode == 1 and "vcruntime140.dll: no valid Authenticode signature" in done.stderr


def test_site_packages_hold_the_server_set_and_nothing_of_the_client(prepared_python: Path) -> None:
    site = prepared_python.parent / "Lib" / "site-packages"
    dists = {p.name.split("-")[0].lower() for p in site.glob("*.dist-info")}
    assert dists == {
        "grpcio",
        "grpcio_health_checking",
        "grpcio_reflection",
        "protobuf",
        "pyyaml",
        "typing_extensions",
    }
    pth = (prepared_python.parent / "python311._pth").read_bytes()
    assert pth == b"python311.zip\r\n.\r\nLib\\site-packages\r\nimport site\r\n"
