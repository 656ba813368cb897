"""hnsdiag -d parser: concatenated JSON objects (reference samples), text kept verbatim."""

from __future__ import annotations

import json

import pytest
from support.reference_samples import VARIANT_IDS, reference, variants

from winspect.node.windows.parsers.hnsdiag import parse_hns_objects


@pytest.mark.parametrize("variant", VARIANT_IDS)
def test_concatenated_reference_objects(variant: str) -> None:
    endpoint = reference("hnsdiag_endpoint.json")
    balancer = reference("hnsdiag_loadbalancer.json")
    text = variants(endpoint + balancer + endpoint)[variant]
    result = parse_hns_objects(text)
    assert [d.id for d in result.documents] == [
        "c9385412-bdef-49f5-88b0-c9d484ef6716",
        "a335d997-4160-44f9-9f72-1087a2cba45e",
        "c9385412-bdef-49f5-88b0-c9d484ef6716",
    ]
    assert result.skipped == []
    first = result.documents[0]
    assert first.value["IPAddress"] == "10.224.0.71"
    assert first.value["Resources"]["Allocators"][0]["Tag"] == "Endpoint Port"
    assert json.loads(first.text) == first.value  # the object's own text, as printed
    assert first.text.startswith("{") and first.text.endswith("}")
    assert result.documents[1].value["PortMappings"] == [
        {"Protocol": 6, "InternalPort": 8080, "ExternalPort": 80}
    ]


def test_objects_back_to_back_without_whitespace() -> None:
    result = parse_hns_objects('{"ID":"a"}{"ID":"b"}')
    assert [d.id for d in result.documents] == ["a", "b"]
    assert [d.text for d in result.documents] == ['{"ID":"a"}', '{"ID":"b"}']


def test_text_that_is_not_json_is_reported_not_lost() -> None:
    result = parse_hns_objects('Endpoints:\n{"ID":"a"}\ntrailing words\n')
    assert [d.id for d in result.documents] == ["a"]
    assert result.skipped == ["Endpoints:", "trailing words"]


def test_empty_output() -> None:
    result = parse_hns_objects("\r\n\r\n")
    assert result.documents == [] and result.skipped == []
