"""What this host is: hostname, OS name and build (Windows registry on Windows; elsewhere the
host's system, named as what it is there: an emulated Windows node)."""

from __future__ import annotations

import platform
import socket
import sys

from winspect.node.types import PlatformInfo


def _windows_version() -> tuple[str, str]:
    """("Windows Server 2022 Datacenter", "10.0.20348.1668") from the registry."""
    import winreg  # Windows only

    key_path = r"SOFTWARE\Microsoft\Windows NT\CurrentVersion"
    with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, key_path) as key:  # type: ignore[attr-defined,unused-ignore]

        def value(name: str) -> str:
            try:
                return str(winreg.QueryValueEx(key, name)[0])  # type: ignore[attr-defined,unused-ignore]
            except OSError:
                return ""

        product = value("ProductName") or "Windows"
        build = value("CurrentBuildNumber") or value("CurrentBuild")
        ubr = value("UBR")
    version = platform.version()  # "10.0.20348"
    major_minor = ".".join(version.split(".")[:2]) or "10.0"
    os_build = ".".join(part for part in (major_minor, build, ubr) if part)
    return product, os_build


def platform_info() -> PlatformInfo:
    hostname = socket.gethostname()
    if sys.platform == "win32":
        try:
            os_name, os_build = _windows_version()
        except OSError:
            os_name, os_build = "Windows", platform.version()
    else:
        # winspect's node tools exist only on Windows: a server elsewhere serves stand-ins for
        # them (the emulator's), and says so rather than pass for a Windows node.
        os_name, os_build = f"emulated Windows node on {platform.system()}", platform.release()
    return PlatformInfo(hostname=hostname, os=os_name, os_build=os_build)
