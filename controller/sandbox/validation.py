"""Name and label checks the API server makes on every write, with its error wording.

A real API server rejects a Service whose name is not a DNS-1035 label, any object whose name is
not a DNS subdomain, and label values over 63 characters. The emulator must refuse the same, or
the controller could generate names that work here and fail on a cluster.
"""

from __future__ import annotations

import re
from typing import Any

import jsonschema

from controller.sandbox import errors, kinds

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")

# Kinds whose names are DNS labels rather than subdomains (apimachinery's per-kind validators).
_DNS1035_KINDS = frozenset({"services"})
_DNS1123_LABEL_KINDS = frozenset({"namespaces"})


def validate_write(rtype: kinds.ResourceType, obj: dict[str, Any]) -> None:
    """Raise 422 Invalid naming every problem, as the API server does."""
    meta = obj.get("metadata") or {}
    problems = [*_name_problems(rtype.plural, str(meta.get("name") or ""))]
    problems += _label_problems("metadata.labels", meta.get("labels") or {})
    if rtype.plural == "services":
        problems += _label_problems("spec.selector", (obj.get("spec") or {}).get("selector") or {})
    if problems:
        raise errors.ApiError(
            422, "Invalid", f'{rtype.kind} "{meta.get("name", "")}" is invalid: ' + ", ".join(problems)
        )


def validate_custom_resource(rtype: kinds.ResourceType, obj: dict[str, Any]) -> None:
    """A custom resource must satisfy its CRD's structural schema (enums, bounds, required fields)."""
    if rtype.schema is None:
        return
    problems = []
    for error in sorted(jsonschema.Draft4Validator(rtype.schema).iter_errors(obj), key=str):
        where = ".".join(str(part) for part in error.absolute_path) or "<root>"
        if error.validator == "enum":
            supported = ", ".join(f'"{v}"' for v in error.validator_value)
            problems.append(f'{where}: Unsupported value: "{error.instance}": supported values: {supported}')
        else:
            problems.append(f"{where}: Invalid value: {error.message}")
    if problems:
        name = (obj.get("metadata") or {}).get("name", "")
        raise errors.ApiError(
            422, "Invalid", f'{rtype.kind}.{rtype.group} "{name}" is invalid: ' + ", ".join(problems)
        )


def _name_problems(plural: str, name: str) -> list[str]:
    if plural in _DNS1035_KINDS:
        limit, pattern, what = 63, _DNS1035_LABEL, "a DNS-1035 label"
    elif plural in _DNS1123_LABEL_KINDS:
        limit, pattern, what = 63, _DNS1123_LABEL, "a lowercase RFC 1123 label"
    else:
        limit, pattern, what = 253, _DNS1123_SUBDOMAIN, "a lowercase RFC 1123 subdomain"
    found = []
    if len(name) > limit:
        found.append(f'metadata.name: Invalid value: "{name}": must be no more than {limit} characters')
    if not pattern.match(name):
        found.append(f'metadata.name: Invalid value: "{name}": must be {what}')
    return found


def _label_problems(where: str, labels: dict[str, Any]) -> list[str]:
    found = []
    for key, value in labels.items():
        prefix, _, name = str(key).rpartition("/")
        if (prefix and (len(prefix) > 253 or not _DNS1123_SUBDOMAIN.match(prefix))) or (
            len(name) > 63 or not _QUALIFIED_NAME.match(name)
        ):
            found.append(f'{where}: Invalid value: "{key}": not a valid label key')
        text = "" if value is None else str(value)
        if len(text) > 63:
            found.append(f'{where}: Invalid value: "{text}": must be no more than 63 characters')
        elif not _LABEL_VALUE.match(text):
            found.append(f'{where}: Invalid value: "{text}": a valid label value is required')
    return found
