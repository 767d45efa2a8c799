"""Label and field selectors as the API server reads them from `?labelSelector=` / `?fieldSelector=`."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from controller.sandbox import errors

Predicate = Callable[[Mapping[str, Any]], bool]

_SET_TERM = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQ_TERM = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*(==|=|!=)\s*([A-Za-z0-9_.-]*)\s*$")
_EXISTS_TERM = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*$")


def _split_terms(text: str) -> list[str]:
    """Split on commas that are not inside `( … )`."""
    terms: list[str] = []
    depth, current = 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        terms.append(current)
    return terms


def _label_term(term: str) -> Callable[[Mapping[str, str]], bool]:
    if match := _SET_TERM.match(term):
        key, operator, values_text = match.groups()
        values = {value.strip() for value in values_text.split(",") if value.strip()}
        if operator == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if match := _EQ_TERM.match(term):
        key, operator, value = match.groups()
        if operator == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if match := _EXISTS_TERM.match(term):
        negated, key = match.groups()
        if negated:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    raise errors.ApiError(400, "BadRequest", f"unable to parse requirement: {term!r}")


def parse_label_selector(text: str | None) -> Predicate:
    """`app=x,tier!=db,env in (a,b),!legacy` → predicate on an object."""
    if not text:
        return lambda obj: True
    terms = [_label_term(term) for term in _split_terms(text)]

    def matches(obj: Mapping[str, Any]) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(term(labels) for term in terms)

    return matches


def _field_value(obj: Mapping[str, Any], path: str) -> str:
    node: Any = obj
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return ""
        node = node.get(part)
    return "" if node is None else str(node)


def parse_field_selector(text: str | None) -> Predicate:
    """`metadata.name=x,status.phase!=Running` → predicate; only `=`, `==` and `!=` exist for fields."""
    if not text:
        return lambda obj: True
    checks: list[tuple[str, bool, str]] = []
    for term in _split_terms(text):
        match = _EQ_TERM.match(term)
        if match is None:
            raise errors.ApiError(400, "BadRequest", f"invalid field selector term: {term!r}")
        path, operator, value = match.groups()
        checks.append((path, operator != "!=", value))

    def matches(obj: Mapping[str, Any]) -> bool:
        return all((_field_value(obj, path) == value) == equal for path, equal, value in checks)

    return matches
