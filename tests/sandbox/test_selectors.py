"""Label and field selector parsing and matching (pure functions)."""

from __future__ import annotations

import pytest

from winspect.kube.selectors import (
    Requirement,
    SelectorError,
    field_value,
    parse_field_selector,
    parse_label_selector,
)

LABELS = {"app": "web", "tier": "front", "kubernetes.io/os": "windows", "empty": ""}


@pytest.mark.parametrize(
    ("text", "matches"),
    [
        ("", True),
        ("app=web", True),
        ("app==web", True),
        ("app=db", False),
        ("app!=db", True),
        ("missing!=x", True),  # != matches objects without the label, as in Kubernetes
        ("app in (db,web)", True),
        ("app in (db)", False),
        ("app notin (db)", True),
        ("app notin (web, db)", False),
        ("missing notin (x)", True),
        ("app", True),
        ("missing", False),
        ("!missing", True),
        ("!app", False),
        ("kubernetes.io/os=windows,tier=front", True),
        ("kubernetes.io/os=windows,tier=back", False),
        ("empty=", True),
        ("  app = web ,  tier in ( front ) ", True),
    ],
)
def test_label_selector_matching(text: str, matches: bool) -> None:
    assert parse_label_selector(text).matches_labels(LABELS) is matches


def test_label_selector_requirements() -> None:
    sel = parse_label_selector("a=b,c!=d,e in (f,g),h notin (i),j,!k")
    assert sel.requirements == (
        Requirement("a", "=", ("b",)),
        Requirement("c", "!=", ("d",)),
        Requirement("e", "in", ("f", "g")),
        Requirement("h", "notin", ("i",)),
        Requirement("j", "exists"),
        Requirement("k", "!exists"),
    )


@pytest.mark.parametrize(
    "text",
    [
        "app in (web",
        "app in web",
        "app=web,",
        "app web",
        "app in ()",
        "-app=x",
        "app=-x-",
        "a/b/c=d",
        "app=a b",
        "x" * 64 + "=v",
        "app=" + "v" * 64,
    ],
)
def test_bad_label_selectors(text: str) -> None:
    with pytest.raises(SelectorError, match="unable to parse requirement"):
        parse_label_selector(text)


def test_field_selectors() -> None:
    pod = {
        "metadata": {"name": "p", "namespace": "web"},
        "spec": {"nodeName": "n1", "hostNetwork": True},
        "status": {"phase": "Running"},
    }
    fields = {
        k: field_value(pod, k) for k in ("metadata.name", "spec.nodeName", "status.phase", "spec.hostNetwork")
    }
    assert fields == {
        "metadata.name": "p",
        "spec.nodeName": "n1",
        "status.phase": "Running",
        "spec.hostNetwork": "true",
    }
    ok = lambda f: f in fields  # noqa: E731
    assert parse_field_selector("spec.nodeName=n1,status.phase!=Pending", ok).matches_fields(fields)
    assert not parse_field_selector("spec.nodeName==n2", ok).matches_fields(fields)
    assert parse_field_selector("metadata.name=p", ok).matches_fields(fields)
    assert field_value({"spec": {}}, "spec.nodeName") == ""
    with pytest.raises(SelectorError, match=r"^field label not supported: spec\.other$"):
        parse_field_selector("spec.other=x", ok)
    with pytest.raises(SelectorError, match="invalid selector"):
        parse_field_selector("spec.nodeName", ok)
