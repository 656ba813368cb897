"""`pktmon list` parser: the reference sample, variants, MAC normalisation, other sections."""

from __future__ import annotations

import pytest
from support.reference_samples import VARIANT_IDS, reference, variants

from winspect.node.windows.parsers.pktmon_list import Component, components_by_mac, parse_components


@pytest.mark.parametrize("variant", VARIANT_IDS)
def test_reference_sample(variant: str) -> None:
    text = variants(reference("pktmon_list.txt"))[variant]
    assert parse_components(text) == [
        Component(
            id=9,
            name="Intel(R) Ethernet Connection (2) I219-V #2",
            mac="40-8D-5C-B5-46-51",
            group="Network Adapters",
        ),
        Component(
            id=104,
            name="433db3ea-0acd-457a-9c86-55bb7fa27391",
            mac="00-15-5D-D1-5A-30",
            group="Network Adapters",
        ),
    ]


def test_mixed_case_and_colon_macs_are_normalised_and_indexed() -> None:
    text = (
        "Network Adapters:\n"
        "   Id MAC Address       Name\n"
        "   -- -----------       ----\n"
        "   12 0e-2a-0A-2a-d5-dd Container NIC 1\n"
        "   13 0e:2a:0a:2a:d5:de Container NIC 2\n"
        "\n"
        "Network Switches:\n"
        "   Id Name\n"
        "   -- ----\n"
        "   20 Virtual Filtering Platform VFP Extension\n"
    )
    components = parse_components(text)
    assert [(c.id, c.mac, c.group) for c in components] == [
        (12, "0E-2A-0A-2A-D5-DD", "Network Adapters"),
        (13, "0E-2A-0A-2A-D5-DE", "Network Adapters"),
        (20, "", "Network Switches"),
    ]
    assert components[2].name == "Virtual Filtering Platform VFP Extension"
    index = components_by_mac(components)
    assert [c.id for c in index["0E-2A-0A-2A-D5-DD"]] == [12]
    assert "" not in index
