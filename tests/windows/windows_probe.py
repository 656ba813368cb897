"""Run by Windows CPython in the Windows lane (tests/windows/test_windows_platform.py): calls the
node's Windows-only code paths and prints what they did, as JSON.

    python.exe windows_probe.py SRC_DIR
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, sys.argv[1])

from winspect.node.windows import private_dir, runner, text_decoding
from winspect.server import app, shutdown


def fills_without_reader(read_end: int, write_end: int, size: int) -> bool:
    """Whether `size` bytes fit into the pipe while nobody reads it (2 s to tell)."""
    done = threading.Event()

    def write() -> None:
        os.write(write_end, b"x" * size)
        done.set()

    threading.Thread(target=write, daemon=True).start()
    return done.wait(2.0)


def main() -> None:
    found: dict[str, object] = {"platform": sys.platform}
    found["output_pipe_holds_512k"] = fills_without_reader(*runner.output_pipe(), 512 * 1024)
    found["default_pipe_holds_512k"] = fills_without_reader(*os.pipe(), 512 * 1024)
    found["console_encoding"] = text_decoding.console_encoding()
    found["decoded_oem"] = text_decoding.decode_output("Größe Ä\r\n".encode(text_decoding.console_encoding()))
    found["decoded_utf16"] = text_decoding.decode_output("\ufeffName\r\n".encode("utf-16-le"))
    found["console_handler_installed"] = shutdown.install_console_handler(lambda event: True) is not None
    found["switch_interval"] = app.switch_interval_for(sys.platform)
    target = Path(tempfile.mkdtemp()) / "private"
    try:
        private_dir.make_private_dir(target)
        found["private_dir"] = target.is_dir()
    except OSError as exc:
        found["private_dir"] = str(exc)
    print(json.dumps(found), flush=True)


if __name__ == "__main__":
    main()
