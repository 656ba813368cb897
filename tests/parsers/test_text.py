"""The one MAC form (winspect.node.mac: parsers and server) and the parsers' line splitting."""

from __future__ import annotations

import pytest

from winspect.node.mac import normalise_mac
from winspect.node.windows.parsers.text import text_lines


@pytest.mark.parametrize(
    "given",
    ["0e-2a-0a-2a-d5-dd", "0E:2A:0A:2A:D5:DD", "0e2a0A2aD5dd", "0E-2A-0a-2a-d5-dd", " 0e-2a-0a-2a-d5-dd "],
)
def test_every_form_of_a_mac_becomes_pktmons(given: str) -> None:
    assert normalise_mac(given) == "0E-2A-0A-2A-D5-DD"


@pytest.mark.parametrize(
    "given", ["", "0e-2a-0a-2a-d5", "0e-2a:0a-2a-d5-dd", "0e-2a-0a-2a-d5-dg", "0e-2a-0a-2a-d5-dd-00"]
)
def test_what_is_not_six_uniformly_separated_octets_is_refused(given: str) -> None:
    with pytest.raises(ValueError, match="not a MAC address"):
        normalise_mac(given)


def test_lines_lose_their_endings_and_trailing_blanks_but_keep_indentation() -> None:
    assert text_lines("a  \r\n  b\n\nc\r") == ["a", "  b", "", "c"]
