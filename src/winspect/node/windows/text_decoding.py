"""Tool output as text, decoded by what the bytes show.

Which encoding each Windows console tool writes into a pipe is not
documented: the console's (OEM) code page, UTF-8, or UTF-16LE with a
byte-order mark (pktmon's etl2txt files are UTF-16LE with a BOM). The
locale says nothing useful either (the image sets PYTHONUTF8=1). So the
bytes decide, in this order:

1. a byte-order mark: UTF-8, UTF-16LE or UTF-16BE;
2. UTF-16 without a mark: the tools print mostly ASCII, which in UTF-16
   has a NUL in every other byte (no text in another encoding has NULs);
3. UTF-8, when the bytes are valid UTF-8;
4. the console's code page: GetConsoleOutputCP when the process has a
   console whose code page is not UTF-8, else GetOEMCP (Windows); the
   locale's encoding elsewhere. Undecodable bytes become U+FFFD.

`decode_output` decodes a whole output; `StreamDecoder` a stream read in
chunks (the capture's pipe, each converted log file), deciding from its
first bytes and switching from UTF-8 to the code page at the first byte
that is not UTF-8.
"""

from __future__ import annotations

import codecs
import functools
import locale
import sys

_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# Bytes looked at for the UTF-16 NUL pattern, and the fewest needed to decide.
_SNIFF_BYTES = 512
_MIN_SNIFF_BYTES = 4
_UTF8_CODE_PAGE = 65001


@functools.lru_cache(maxsize=1)
def console_encoding() -> str:
    """The encoding of step 4: the console's code page (Windows), else the locale's."""
    if sys.platform == "win32":
        import ctypes

        kernel32 = ctypes.windll.kernel32
        for code_page in (kernel32.GetConsoleOutputCP(), kernel32.GetOEMCP()):
            if code_page and code_page != _UTF8_CODE_PAGE and _known(f"cp{code_page}"):
                return f"cp{code_page}"
        return "cp437"
    encoding = locale.getpreferredencoding(False) or "utf-8"
    return encoding if _known(encoding) else "utf-8"


def _known(encoding: str) -> bool:
    try:
        codecs.lookup(encoding)
    except LookupError:
        return False
    return True


def sniff(data: bytes, final: bool = True) -> tuple[str, int] | None:
    """(encoding, length of its byte-order mark) by steps 1-2, "utf-8" when neither shows;
    None when more bytes are needed to tell (only when not `final`)."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding, len(bom)
    if not final and (len(data) < _MIN_SNIFF_BYTES):
        return None
    sample = data[: _SNIFF_BYTES & ~1]
    sample = sample[: len(sample) & ~1]
    pairs = len(sample) // 2
    if pairs:
        even_nuls = sample[0::2].count(0)
        odd_nuls = sample[1::2].count(0)
        if odd_nuls * 2 >= pairs and even_nuls * 4 <= odd_nuls:
            return "utf-16-le", 0
        if even_nuls * 2 >= pairs and odd_nuls * 4 <= even_nuls:
            return "utf-16-be", 0
    return "utf-8", 0


def decode_output(data: bytes | None, fallback: str | None = None) -> str:
    """A tool's whole output as text (steps 1-4; `fallback` overrides step 4's code page)."""
    if not data:
        return ""
    decoder = StreamDecoder(fallback)
    return decoder.decode(data, final=True)


class StreamDecoder:
    """Decodes a stream chunk by chunk: the encoding is chosen from the first bytes (steps 1-3),
    and UTF-8 gives way to the code page (step 4) at the first byte that is not UTF-8."""

    def __init__(self, fallback: str | None = None) -> None:
        self._fallback = fallback
        self._pending = b""  # bytes seen before the encoding was chosen
        self._decoder: codecs.IncrementalDecoder | None = None
        self._utf8 = False  # strict UTF-8 so far (may still fall back)
        self.encoding = ""

    def decode(self, data: bytes, final: bool = False) -> str:
        if self._decoder is None:
            data = self._pending + data
            chosen = sniff(data, final)
            if chosen is None:
                self._pending = data
                return ""
            self._pending = b""
            encoding, skip = chosen
            data = data[skip:]
            self._utf8 = encoding == "utf-8" and not skip  # with a BOM, UTF-8 it is
            self._start(encoding, "strict" if self._utf8 else "replace")
        assert self._decoder is not None
        if not self._utf8:
            return self._decoder.decode(data, final)
        buffered, _ = self._decoder.getstate()
        try:
            return self._decoder.decode(data, final)
        except UnicodeDecodeError:  # not UTF-8 after all: the console's code page from here on
            self._utf8 = False
            self._start(self._fallback or console_encoding(), "replace")
            return self._decoder.decode(buffered + data, final)

    def _start(self, encoding: str, errors: str) -> None:
        self.encoding = encoding
        self._decoder = codecs.getincrementaldecoder(encoding)(errors=errors)
