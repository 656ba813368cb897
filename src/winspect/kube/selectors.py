"""Label and field selectors as the Kubernetes API server parses them.

Pure functions: `parse_label_selector` / `parse_field_selector` turn the
query-string form into requirements (raising SelectorError with the API
server's wording on bad input), and `Requirement.matches` tests a value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_PREFIX = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_KEY_RE = re.compile(rf"^({_PREFIX}/)?{_NAME}\Z")
_VALUE_RE = re.compile(rf"^({_NAME})?\Z")


class SelectorError(ValueError):
    """A selector the API server would refuse with 400 BadRequest."""


@dataclass(frozen=True)
class Requirement:
    """One term of a selector: `key op values`."""

    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!exists"
    values: tuple[str, ...] = ()

    def matches(self, present: bool, value: str | None) -> bool:
        if self.op == "exists":
            return present
        if self.op == "!exists":
            return not present
        if self.op in ("=", "in"):
            return present and value in self.values
        return not present or value not in self.values


@dataclass(frozen=True)
class Selector:
    """A conjunction of requirements; empty matches everything."""

    requirements: tuple[Requirement, ...] = ()

    def matches_labels(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(r.key in labels, labels.get(r.key)) for r in self.requirements)

    def matches_fields(self, fields: Mapping[str, str]) -> bool:
        return all(r.matches(True, fields.get(r.key, "")) for r in self.requirements)


# ---------------------------------------------------------------- labels

_TOKEN_RE = re.compile(r"\s*(\(|\)|,|==|=|!=|!|[^\s(),=!]+)")


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if not m:
            raise SelectorError(f"unable to parse requirement: unexpected character at {text[pos:]!r}")
        out.append(m.group(1))
        pos = m.end()
    return out


def _check_key(key: str) -> str:
    if not _KEY_RE.match(key) or len(key.rsplit("/", 1)[-1]) > 63:
        raise SelectorError(
            f'unable to parse requirement: Invalid value: "{key}": name part must consist of '
            "alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character"
        )
    return key


def _check_value(value: str) -> str:
    if not _VALUE_RE.match(value) or len(value) > 63:
        raise SelectorError(
            f'unable to parse requirement: Invalid value: "{value}": a valid label must be an '
            "empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
            "start and end with an alphanumeric character"
        )
    return value


def parse_label_selector(text: str | None) -> Selector:
    """Parse `labelSelector` (`a=b,c!=d,e in (f,g),!h,i`)."""
    if not text or not text.strip():
        return Selector()
    toks = _tokens(text)
    reqs: list[Requirement] = []
    i = 0

    def expect(what: str) -> str:
        nonlocal i
        if i >= len(toks):
            raise SelectorError(f"unable to parse requirement: found '', expected: {what}")
        tok = toks[i]
        i += 1
        return tok

    while i < len(toks):
        tok = expect("key")
        if tok == "!":
            reqs.append(Requirement(_check_key(expect("identifier")), "!exists"))
        else:
            key = _check_key(tok)
            nxt = toks[i] if i < len(toks) else ","
            if nxt == ",":
                reqs.append(Requirement(key, "exists"))
            elif nxt in ("=", "==", "!="):
                i += 1
                value = toks[i] if i < len(toks) and toks[i] != "," else ""
                if value:
                    i += 1
                reqs.append(Requirement(key, "!=" if nxt == "!=" else "=", (_check_value(value),)))
            elif nxt in ("in", "notin"):
                i += 1
                if expect("'('") != "(":
                    raise SelectorError(f"unable to parse requirement: found '{toks[i - 1]}', expected: '('")
                values: list[str] = []
                while True:
                    v = expect("',', ')' or identifier")
                    if v == ")":
                        break
                    if v == ",":
                        continue
                    values.append(_check_value(v))
                if not values and nxt == "in":
                    raise SelectorError(
                        "unable to parse requirement: for 'in' operator, values set can't be empty"
                    )
                reqs.append(Requirement(key, nxt, tuple(values)))
            else:
                raise SelectorError(
                    f"unable to parse requirement: found '{nxt}', expected: in, notin, =, ==, !="
                )
        if i < len(toks):
            if toks[i] != ",":
                raise SelectorError(f"unable to parse requirement: found '{toks[i]}', expected: ','")
            i += 1
            if i >= len(toks):
                raise SelectorError("unable to parse requirement: found '', expected: identifier")
    return Selector(tuple(reqs))


_OPERATORS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!exists"}


def label_selector(match_labels: Mapping[str, str] | None, match_expressions: Any = None) -> Selector:
    """A LabelSelector object (matchLabels and matchExpressions: In, NotIn, Exists, DoesNotExist)
    as a Selector; both empty select everything. SelectorError for an operator Kubernetes has not."""
    reqs = [Requirement(k, "=", (v,)) for k, v in (match_labels or {}).items()]
    for e in match_expressions or []:
        op = _OPERATORS.get(e.operator)
        if op is None:
            raise SelectorError(f"{e.operator!r} is not a valid label selector operator")
        reqs.append(Requirement(e.key, op, tuple(e.values or ())))
    return Selector(tuple(reqs))


# ---------------------------------------------------------------- fields


_FIELD_TERM_RE = re.compile(r"^([^=!]+)(!=|==|=)(.*)\Z")


def parse_field_selector(text: str | None, supported: Callable[[str], bool]) -> Selector:
    """Parse `fieldSelector` (`a=b,c!=d`); `supported` says which field paths exist."""
    if not text or not text.strip():
        return Selector()
    reqs: list[Requirement] = []
    for term in _split_unescaped(text):
        term = term.strip()
        if not term:
            continue
        m = _FIELD_TERM_RE.match(term)
        if not m:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{term}'")
        field, sym, value = m.group(1).strip(), m.group(2), m.group(3)
        if not supported(field):
            raise SelectorError(f"field label not supported: {field}")
        reqs.append(Requirement(field, "!=" if sym == "!=" else "=", (_unescape(value),)))
    return Selector(tuple(reqs))


def _split_unescaped(text: str) -> list[str]:
    parts, cur, esc = [], "", False
    for ch in text:
        if esc:
            cur += "\\" + ch
            esc = False
        elif ch == "\\":
            esc = True
        elif ch == ",":
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


def field_value(obj: Mapping[str, Any], path: str) -> str:
    """The string value of a dotted field path (`spec.nodeName`); "" when absent."""
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return ""
        cur = cur[part]
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return "" if cur is None else str(cur)
