"""Change one scalar in a YAML manifest and nothing else: comments, order, quoting and layout stay.

A rollback's write-back and a version bump edit files people wrote; a load-and-dump would rewrite
every line of them. Here the value's own characters are replaced, found through the node marks
PyYAML's composer keeps.
"""

from __future__ import annotations

import re

import yaml


class EditError(ValueError):
    """The document or the field to edit is not in the text (or the field is not a scalar)."""


PLAIN_SAFE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-/]*$")


def read_scalar(text: str, *, kind: str, name: str, path: tuple[str, ...]) -> str | None:
    """The scalar at `path` in the `kind` document named `name`; None when the field is absent."""
    node = _find(_document(text, kind, name), path)
    if node is None:
        return None
    if not isinstance(node, yaml.ScalarNode):
        raise EditError(f"{kind} {name}: {'.'.join(path)} is not a single value")
    return str(node.value)


def set_scalar(text: str, *, kind: str, name: str, path: tuple[str, ...], value: str) -> str:
    """`text` with the scalar at `path` (which must exist) set to the string `value`."""
    node = _find(_document(text, kind, name), path)
    if node is None:
        raise EditError(f"{kind} {name} has no {'.'.join(path)} to change")
    if not isinstance(node, yaml.ScalarNode):
        raise EditError(f"{kind} {name}: {'.'.join(path)} is not a single value")
    start, end = node.start_mark.index, node.end_mark.index
    return text[:start] + _spelled(value, node.style) + text[end:]


def _spelled(value: str, style: str | None) -> str:
    """The value quoted as the original was; a plain value that YAML would read as a number or a
    boolean is double-quoted, so a string stays a string."""
    if style == "'":
        return "'" + value.replace("'", "''") + "'"
    if style == '"' or not PLAIN_SAFE.match(value) or _reads_as_other_than_string(value):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return value


def _reads_as_other_than_string(value: str) -> bool:
    return not isinstance(yaml.safe_load(value), str)


def _document(text: str, kind: str, name: str) -> yaml.MappingNode:
    try:
        documents = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as error:
        raise EditError(f"not valid YAML: {error}") from error
    for document in documents:
        if not isinstance(document, yaml.MappingNode):
            continue
        if _scalar_at(document, ("kind",)) == kind and _scalar_at(document, ("metadata", "name")) == name:
            return document
    raise EditError(f"no {kind} named {name} in the file")


def _scalar_at(node: yaml.Node, path: tuple[str, ...]) -> str | None:
    found = _find(node, path)
    return str(found.value) if isinstance(found, yaml.ScalarNode) else None


def _find(node: yaml.Node, path: tuple[str, ...]) -> yaml.Node | None:
    for part in path:
        if not isinstance(node, yaml.MappingNode):
            return None
        child = next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == part), None)
        if child is None:
            return None
        node = child
    return node
