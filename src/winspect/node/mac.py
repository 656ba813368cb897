"""MAC addresses in one canonical form: six upper-case hex octets joined by `-`."""

from __future__ import annotations

import re

_MAC = re.compile(r"^[0-9A-Fa-f]{2}([-:]?)[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2}){4}\Z")


def normalise_mac(mac: str) -> str:
    """`0e:2a:0A-2a-D5-dd` forms -> `0E-2A-0A-2A-D5-DD` (pktmon's form).

    Raises ValueError when `mac` is not six hex octets separated uniformly by
    `-`, `:` or nothing.
    """
    value = mac.strip()
    if not _MAC.match(value):
        raise ValueError(f"not a MAC address: {mac!r}")
    digits = value.replace("-", "").replace(":", "").upper()
    return "-".join(digits[i : i + 2] for i in range(0, 12, 2))
