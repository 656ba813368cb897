"""Tool output in every encoding a Windows console tool may write into a pipe: UTF-16LE with and
without a byte-order mark, UTF-8 with a mark, and OEM code pages (cp437, cp850). Each parser's
samples decode to the same text and parse to the same result; streams decode the same whatever
their chunking; through the runner, UTF-16 `pktmon list` still finds the components."""

from __future__ import annotations

import codecs
import os
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from winspect.node.windows.parsers.hnsdiag import parse_hns_objects
from winspect.node.windows.parsers.pktmon_counters import parse_counters_json, parse_counters_text
from winspect.node.windows.parsers.pktmon_filter_list import parse_filter_list
from winspect.node.windows.parsers.pktmon_list import parse_components
from winspect.node.windows.parsers.pktmon_status import parse_status
from winspect.node.windows.parsers.vfpctrl import parse_port_counters, parse_vmswitch_ports
from winspect.node.windows.runner import ToolRunner
from winspect.node.windows.text_decoding import StreamDecoder, decode_output
from winspect.node.windows.tools import resolve_tools
from winspect.records.pktmon_realtime import parse_realtime

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
NOW = datetime(2024, 5, 1, 23, 5, 0, tzinfo=timezone.utc)


def _realtime(text: str) -> Any:
    return parse_realtime(text, "win1", NOW, timezone.utc)


def _hns(text: str) -> Any:
    return [(doc.id, doc.text) for doc in parse_hns_objects(text).documents]


# sample -> (parser, a name in it, the same name as a German or French node would print it)
SAMPLES: dict[str, tuple[Callable[[str], Any], str, str]] = {
    "reference/pktmon_list.txt": (parse_components, "Ethernet Connection", "Ethernet-Verbindung für"),
    "reference/pktmon_filter_list.txt": (parse_filter_list, "IP-TCP-SYN-443", "Überwachung-443"),
    "current_output/filter_list_current.txt": (parse_filter_list, "", ""),
    "reference/pktmon_status_idle.txt": (parse_status, "", ""),
    "reference/pktmon_counters.json": (parse_counters_json, "<name>", "Réseau étendu"),
    "current_output/pktmon_counters_text.txt": (
        parse_counters_text,
        "Ethernet Connection",
        "Ethernet-Verbindung für",
    ),
    "reference/hnsdiag_endpoint.json": (_hns, "4a625a2b10a3_azure", "4a625a2b10a3_azüre"),
    "reference/hnsdiag_loadbalancer.json": (_hns, "", ""),
    "reference/vfpctrl_list_vmswitch_port.txt": (
        parse_vmswitch_ports,
        "Container NIC",
        "Conteneur carte réseau",
    ),
    "reference/vfpctrl_get_port_counter.txt": (parse_port_counters, "", ""),
    "reference/pktmon_realtime_flow.txt": (_realtime, "", ""),
    "reference/pktmon_realtime_drop.txt": (
        _realtime,
        "transport endpoint was not found",
        "Transportendpunkt wurde nicht gefunden (Schlüssel)",
    ),
    "current_output/realtime_current.txt": (_realtime, "", ""),
}

ENCODINGS: dict[str, Callable[[str], bytes]] = {
    "utf-16le-bom": lambda text: codecs.BOM_UTF16_LE + text.encode("utf-16-le"),
    "utf-16le": lambda text: text.encode("utf-16-le"),
    "utf-8-bom": lambda text: codecs.BOM_UTF8 + text.encode("utf-8"),
    "utf-8": lambda text: text.encode("utf-8"),
    "cp437": lambda text: text.encode("cp437"),
    "cp850": lambda text: text.encode("cp850"),
}


def _sample(name: str) -> str:
    """The sample with CRLF line ends and, where it has one, a name with non-ASCII letters."""
    _, plain, translated = SAMPLES[name]
    text = (FIXTURES / name).read_text(encoding="utf-8").replace("\r\n", "\n").replace("\n", "\r\n")
    if plain:
        assert plain in text
        text = text.replace(plain, translated)
    return text


@pytest.mark.parametrize("encoding", list(ENCODINGS))
@pytest.mark.parametrize("name", list(SAMPLES))
def test_every_sample_in_every_encoding_parses_as_the_original(name: str, encoding: str) -> None:
    parse = SAMPLES[name][0]
    text = _sample(name)
    data = ENCODINGS[encoding](text)
    fallback = encoding if encoding.startswith("cp") else None
    if fallback and not text.isascii():
        with pytest.raises(UnicodeDecodeError):  # the code page step is what decodes it
            data.decode("utf-8")
    decoded = decode_output(data, fallback=fallback)
    assert decoded == text
    assert parse(decoded) == parse(text)


@pytest.mark.parametrize("encoding", list(ENCODINGS))
@pytest.mark.parametrize("chunk", [1, 3, 4096])
def test_a_stream_decodes_the_same_in_any_chunking(encoding: str, chunk: int) -> None:
    text = _sample("reference/pktmon_realtime_drop.txt") * 3
    data = ENCODINGS[encoding](text)
    decoder = StreamDecoder(fallback=encoding if encoding.startswith("cp") else None)
    parts = [decoder.decode(data[i : i + chunk]) for i in range(0, len(data), chunk)]
    parts.append(decoder.decode(b"", final=True))
    assert "".join(parts) == text
    assert _realtime("".join(parts)) == _realtime(text)


def test_utf8_that_turns_out_to_be_a_code_page_mid_stream() -> None:
    text = "Processing...\r\n" * 100 + "Schlüssel für Übertragung\r\n"
    data = text.encode("cp850")
    decoder = StreamDecoder(fallback="cp850")
    out = decoder.decode(data[:1000]) + decoder.decode(data[1000:]) + decoder.decode(b"", final=True)
    assert out == text
    assert decoder.encoding == "cp850"


def test_nothing_and_short_outputs() -> None:
    assert decode_output(b"") == ""
    assert decode_output(None) == ""
    assert decode_output(b"ok") == "ok"
    assert decode_output(codecs.BOM_UTF16_LE) == ""
    assert decode_output(codecs.BOM_UTF8 + b"{}") == "{}"


def _tool(tools: Path, name: str, body: bytes) -> None:
    """A tool that writes `body` to stdout, whatever its arguments."""
    payload = tools / f"{name}.out"
    payload.write_bytes(body)
    script = tools / name
    script.write_text(
        f"#!{sys.executable}\nimport sys\nsys.stdout.buffer.write(open({str(payload)!r}, 'rb').read())\n",
        encoding="utf-8",
    )
    script.chmod(0o755)


@pytest.mark.parametrize("encoding", ["utf-16le-bom", "utf-16le", "utf-8-bom", "cp850"])
def test_runner_gives_parsers_text_whatever_the_tool_wrote(tmp_path: Path, encoding: str) -> None:
    text = _sample("reference/pktmon_list.txt")
    _tool(tmp_path, "pktmon", ENCODINGS[encoding](text))
    runner = ToolRunner(resolve_tools(tmp_path, {"PATH": os.environ.get("PATH", "")}))
    stdout = runner.run("pktmon", ["list"]).stdout
    if encoding == "cp850":  # the fallback here is the locale's: the text survives up to the letters
        assert stdout.replace("\ufffd", "ü") == text
    else:
        assert stdout == text
    components = parse_components(stdout)
    assert len(components) == len(parse_components(text)) > 0
