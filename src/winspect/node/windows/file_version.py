"""The file version of an executable (`10.0.17763.1`), as Explorer's Details tab shows it.

One function per platform: on Windows the version resource is read with
GetFileVersionInfoW / VerQueryValueW (version.dll, through ctypes);
elsewhere an executable has no such resource and the answer is "".
"""

from __future__ import annotations

import sys


def file_version(path: str) -> str:
    """`major.minor.build.revision` of `path`'s fixed file info; "" when it has none."""
    if sys.platform != "win32":
        return ""
    return _windows_file_version(path)


def _windows_file_version(path: str) -> str:  # pragma: no cover - Windows only
    import ctypes
    from ctypes import wintypes

    version = ctypes.WinDLL("version.dll")  # type: ignore[attr-defined,unused-ignore]
    size = version.GetFileVersionInfoSizeW(path, None)
    if not size:
        return ""
    buffer = ctypes.create_string_buffer(size)
    if not version.GetFileVersionInfoW(path, 0, size, buffer):
        return ""
    info = ctypes.c_void_p()
    length = wintypes.UINT()
    if not version.VerQueryValueW(buffer, "\\", ctypes.byref(info), ctypes.byref(length)) or not info.value:
        return ""

    class FixedFileInfo(ctypes.Structure):
        _fields_ = [
            (name, wintypes.DWORD)
            for name in (
                "dwSignature",
                "dwStrucVersion",
                "dwFileVersionMS",
                "dwFileVersionLS",
            )
        ]

    fixed = ctypes.cast(info, ctypes.POINTER(FixedFileInfo)).contents
    ms, ls = fixed.dwFileVersionMS, fixed.dwFileVersionLS
    return f"{ms >> 16}.{ms & 0xFFFF}.{ls >> 16}.{ls & 0xFFFF}"
