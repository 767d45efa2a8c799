"""Build CustomResourceDefinitions from the resource models.

The models are the single source; the YAML in crds/ is their output. Pydantic writes JSON
Schema (draft 2020-12); Kubernetes wants a *structural* OpenAPI v3.0 schema: no $ref, a
type on every node, `nullable` instead of a null branch, boolean exclusive bounds, and no
`additionalProperties: false`. This module does that translation and fails loudly on a
construct it cannot translate, rather than emitting a schema the API server would refuse.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from controller.resources import kinds, meta

_DROPPED_KEYS = frozenset({"title", "default", "examples", "discriminator", "$defs"})
_KEPT_KEYS = frozenset(
    {
        "type",
        "properties",
        "required",
        "items",
        "additionalProperties",
        "description",
        "enum",
        "format",
        "pattern",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "nullable",
        "x-kubernetes-int-or-string",
        "x-kubernetes-preserve-unknown-fields",
    }
)


class SchemaTranslationError(ValueError):
    """A model uses a JSON Schema construct with no structural OpenAPI equivalent."""


def build_structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return _translate(raw, raw.get("$defs", {}), path=model.__name__)


def _translate(node: dict[str, Any], defs: dict[str, Any], path: str) -> dict[str, Any]:
    node = _inline(node, defs)
    if "anyOf" in node or "oneOf" in node:
        node = _collapse_union(node, defs, path)
    if "allOf" in node:
        parts = node.pop("allOf")
        if len(parts) != 1:
            raise SchemaTranslationError(f"{path}: allOf with {len(parts)} parts")
        node = {**_inline(parts[0], defs), **node}
    if "const" in node:
        node["enum"] = [node.pop("const")]
        node.setdefault("type", "string")
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED_KEYS:
            continue
        if key not in _KEPT_KEYS:
            raise SchemaTranslationError(f"{path}: no structural equivalent for {key!r}")
        if key == "properties":
            out[key] = {name: _translate(sub, defs, f"{path}.{name}") for name, sub in value.items()}
        elif key == "items":
            out[key] = _translate(value, defs, f"{path}[]")
        elif key == "additionalProperties":
            if isinstance(value, dict):
                out[key] = _translate(value, defs, f"{path}{{}}")
            # `false` is implied by a structural schema with properties and is not allowed there.
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            bound = "minimum" if key == "exclusiveMinimum" else "maximum"
            out[bound] = value
            out[key] = True
        else:
            out[key] = value
    if "type" not in out and not _is_typeless_allowed(out):
        raise SchemaTranslationError(f"{path}: node has no type")
    if out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True
    return out


def _inline(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    node = dict(node)
    while "$ref" in node:
        ref = node.pop("$ref")
        name = ref.rsplit("/", 1)[-1]
        node = {**defs[name], **node}
    return node


def _collapse_union(node: dict[str, Any], defs: dict[str, Any], path: str) -> dict[str, Any]:
    branches = [_inline(b, defs) for b in node.pop("anyOf", None) or node.pop("oneOf")]
    nullable = any(b.get("type") == "null" for b in branches)
    branches = [b for b in branches if b.get("type") != "null"]
    if len(branches) == 1:
        merged = {**branches[0], **node}
    elif {b.get("type") for b in branches} == {"integer", "string"}:
        merged = {**node, "x-kubernetes-int-or-string": True}
    else:
        raise SchemaTranslationError(f"{path}: a union of {len(branches)} shapes is not structural")
    if nullable:
        merged["nullable"] = True
    return merged


def _is_typeless_allowed(node: dict[str, Any]) -> bool:
    return bool(node.get("x-kubernetes-int-or-string") or node.get("x-kubernetes-preserve-unknown-fields"))


def build_crd(kind: kinds.Kind) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": build_structural_schema(kind.spec),
    }
    version: dict[str, Any] = {"name": meta.VERSION, "served": True, "storage": True}
    if kind.status is not None:
        properties["status"] = build_structural_schema(kind.status)
        version["subresources"] = {"status": {}}
        if kind.scale is not None:
            version["subresources"]["scale"] = {
                "specReplicasPath": kind.scale.spec_replicas,
                "statusReplicasPath": kind.scale.status_replicas,
                "labelSelectorPath": kind.scale.label_selector,
            }
    version["schema"] = {
        "openAPIV3Schema": {"type": "object", "required": ["spec"], "properties": properties}
    }
    version["additionalPrinterColumns"] = [
        {
            "name": col.name,
            "type": col.type,
            "jsonPath": col.json_path,
            **({"description": col.description} if col.description else {}),
        }
        for col in kind.printer_columns
    ]
    names: dict[str, Any] = {
        "kind": kind.kind,
        "listKind": f"{kind.kind}List",
        "plural": kind.plural,
        "singular": kind.singular,
    }
    if kind.short_names:
        names["shortNames"] = list(kind.short_names)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{kind.plural}.{meta.GROUP}"},
        "spec": {
            "group": meta.GROUP,
            "names": names,
            "scope": "Namespaced",
            "versions": [version],
        },
    }


_HEADER = "# Generated by `modelrelease crds` from the models in controller/resources. Do not edit.\n"


KUSTOMIZATION = "kustomization.yaml"


def render_crds() -> dict[str, str]:
    """File name → YAML text, for every kind, and the kustomization that lists them (deploy/ uses it)."""
    files = {
        f"{kind.plural}.{meta.GROUP}.yaml": _HEADER
        + yaml.safe_dump(build_crd(kind), sort_keys=False, width=100)
        for kind in kinds.KINDS
    }
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": sorted(files),
    }
    files[KUSTOMIZATION] = _HEADER + yaml.safe_dump(kustomization, sort_keys=False)
    return files


def write_crds(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_crds().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def diff_crds(directory: Path) -> list[str]:
    """Unified diffs between the committed CRDs and the models; empty when they agree."""
    problems = []
    expected = render_crds()
    for name, text in expected.items():
        path = directory / name
        actual = path.read_text(encoding="utf-8") if path.exists() else ""
        if actual != text:
            diff = difflib.unified_diff(
                actual.splitlines(keepends=True),
                text.splitlines(keepends=True),
                fromfile=f"{path} (committed)",
                tofile=f"{path} (from the models)",
            )
            problems.append("".join(diff) or f"{path}: missing")
    for path in sorted(directory.glob("*.yaml")):
        if path.name not in expected:
            problems.append(f"{path}: no model generates this file; remove it")
    return problems
