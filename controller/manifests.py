"""Read release manifests (YAML files) into resource models, with errors a person can act on.

Every problem names the file, the line, the field path in manifest spelling
(`spec.strategy.canary.steps[2].setWeight`) and what is wrong, and every problem in a file
is reported, not just the first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from controller.resources import kinds, meta

# A file, or a document with its aliases expanded, may hold at most this many bytes. A release is a
# few kilobytes; the API server refuses a request over 3 MiB and etcd an object over 1.5 MiB, so a
# larger file could never be applied — and a small file of aliases (a YAML bomb) could expand to
# gigabytes once built. Either is quarantined alone; docs/gitops.md says so.
MAX_MANIFEST_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Problem:
    source: str
    line: int | None
    path: str
    message: str
    column: int | None = None
    subject: str = ""  # the object, e.g. "ModelRelease ranker", when it is known

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        if self.line and self.column:
            where += f":{self.column}"
        return ": ".join(part for part in (where, self.subject, self.path, self.message) if part)


class ManifestError(ValueError):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class Manifest:
    source: str
    line: int
    resource: BaseModel
    node: yaml.Node | None = None  # where each field sits, for problems found after parsing


@dataclass(frozen=True)
class Foreign:
    """A resource of another API group beside ours (an HTTPRoute, a Service): named, not parsed."""

    source: str
    line: int
    kind: str
    name: str
    namespace: str
    document: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Loaded:
    manifests: list[Manifest]
    foreign: list[Foreign]


def load_file(path: Path) -> list[Manifest]:
    return load_text(path.read_text(encoding="utf-8"), str(path))


def load_text(text: str, source: str) -> list[Manifest]:
    """Every resource in a (multi-document) YAML text; raises ManifestError with every problem."""
    return read_text(text, source).manifests


def read_text(text: str, source: str, *, in_folder: bool = False) -> Loaded:
    """Our resources and the foreign ones in a YAML text; raises ManifestError with every problem.

    `in_folder`: the file was found by walking a folder, not named; a file with none of our
    resources is then no error, and a document that is not a Kubernetes object at all (no kind,
    no apiVersion: a CI workflow, a values file) is passed over.
    """
    if len(text.encode("utf-8", "surrogatepass")) > MAX_MANIFEST_BYTES:
        raise ManifestError(
            [Problem(source, None, "", f"is over {MAX_MANIFEST_BYTES} bytes, the limit for a file")]
        )
    try:
        nodes = [n for n in yaml.compose_all(text, Loader=yaml.SafeLoader) if n is not None]
        for node in nodes:  # before building anything: aliases can blow a small file up (a YAML bomb)
            expanded = _expanded_size(node, {}, set())
            if expanded > MAX_MANIFEST_BYTES:
                raise ManifestError(
                    [
                        Problem(
                            source,
                            node.start_mark.line + 1,
                            "",
                            f"expands (its aliases repeated) to over {MAX_MANIFEST_BYTES} bytes, the limit "
                            "for a manifest",
                        )
                    ]
                )
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except RecursionError:
        raise ManifestError([Problem(source, None, "", "is nested too deep to be a manifest")]) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        column = mark.column + 1 if mark is not None else None
        raise ManifestError(
            [Problem(source, line, "", f"not valid YAML: {_yaml_problem(error)}", column)]
        ) from error
    manifests: list[Manifest] = []
    foreign: list[Foreign] = []
    problems: list[Problem] = []
    for node, document in zip(nodes, documents, strict=True):
        line = node.start_mark.line + 1
        if is_foreign(document):
            # An HTTPRoute, a Service, …: other tools own it; a release folder may hold it.
            metadata = document.get("metadata") or {}
            foreign.append(
                Foreign(
                    source,
                    line,
                    str(document["kind"]),
                    str(metadata.get("name", "")),
                    str(metadata.get("namespace", "")),
                    document,
                )
            )
            continue
        if in_folder and not _looks_like_an_object(document):
            continue
        try:
            manifests.append(Manifest(source, line, parse_document(document, node, source), node))
        except ManifestError as error:
            problems.extend(error.problems)
    if documents and not manifests and not problems and not in_folder:
        found = ", ".join(
            f"{d.get('kind')} {(d.get('metadata') or {}).get('name', '')}".strip() for d in documents
        )
        known = ", ".join(k.kind for k in kinds.KINDS)
        problems.append(
            Problem(source, 1, "", f"no {meta.API_VERSION} resource ({known}) here; found only {found}")
        )
    if problems:
        raise ManifestError(problems)
    return Loaded(manifests, foreign)


def _expanded_size(node: yaml.Node, sizes: dict[int, int], open_nodes: set[int]) -> int:
    """Roughly how many bytes of JSON the node becomes once every alias is copied out, counted on
    the node graph (an alias is the same node again) so that counting never expands anything."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_nodes:  # an alias to its own ancestor: endless once expanded
        return MAX_MANIFEST_BYTES + 1
    open_nodes.add(key)
    if isinstance(node, yaml.ScalarNode):
        size = len(str(node.value)) + 2
    elif isinstance(node, yaml.SequenceNode):
        size = 2 + sum(_expanded_size(item, sizes, open_nodes) + 1 for item in node.value)
    else:
        size = 2 + sum(
            _expanded_size(k, sizes, open_nodes) + _expanded_size(v, sizes, open_nodes) + 2
            for k, v in node.value
        )
    open_nodes.discard(key)
    sizes[key] = size
    return size


def _yaml_problem(error: yaml.YAMLError) -> str:
    """PyYAML's message in one line, its place given by the Problem itself."""
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    context, mark = getattr(error, "context", None), getattr(error, "context_mark", None)
    if context and mark is not None:
        return f"{problem} ({context} at line {mark.line + 1}, column {mark.column + 1})"
    return str(problem)


def _looks_like_an_object(document: Any) -> bool:
    return isinstance(document, dict) and ("kind" in document or "apiVersion" in document)


def is_foreign(document: Any) -> bool:
    """A well-formed resource of another API group. A group one or two letters from ours, or a kind
    of ours under another group, is a typo of ours — an error, never another tool's object: taken
    for foreign, a GitSource would prune the release it names."""
    if not isinstance(document, dict):
        return False
    api_version, kind = document.get("apiVersion"), document.get("kind")
    if not (isinstance(api_version, str) and isinstance(kind, str) and kind):
        return False
    group = api_version.rpartition("/")[0]
    return group != meta.GROUP and not is_near_miss(group) and kind not in kinds.BY_KIND


def is_near_miss(group: str) -> bool:
    """A group within two edits of ours (`modelreleases.dev`, `modelrelease.io` is not)."""
    return group != meta.GROUP and _edit_distance(group.lower(), meta.GROUP, limit=2) <= 2


def _edit_distance(a: str, b: str, *, limit: int) -> int:
    """Levenshtein distance, stopped early once past `limit` (the answer is then limit + 1)."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        if min(current) > limit:
            return limit + 1
        previous = current
    return previous[-1]


def parse_document(document: Any, node: yaml.Node | None = None, source: str = "<input>") -> BaseModel:
    line = node.start_mark.line + 1 if node is not None else None
    if not isinstance(document, dict):
        raise ManifestError([Problem(source, line, "", "a manifest is a mapping with apiVersion and kind")])
    api_version, kind_name = document.get("apiVersion"), document.get("kind")
    kind = kinds.BY_KIND.get(kind_name) if isinstance(kind_name, str) else None
    group = api_version.rpartition("/")[0] if isinstance(api_version, str) else ""
    if kind is not None and group != meta.GROUP and isinstance(api_version, str):
        raise ManifestError(
            [
                Problem(
                    source,
                    _line_of(node, ("apiVersion",)) or line,
                    "apiVersion",
                    f"group {group!r} is not {meta.GROUP}, the group of {kind_name}; "
                    f"write apiVersion: {meta.API_VERSION}",
                )
            ]
        )
    if api_version != meta.API_VERSION or kind is None:
        known = ", ".join(k.kind for k in kinds.KINDS)
        raise ManifestError(
            [
                Problem(
                    source,
                    line,
                    "",
                    f"expected apiVersion {meta.API_VERSION} and a kind of {known}; "
                    f"got apiVersion {api_version!r}, kind {kind_name!r}",
                )
            ]
        )
    try:
        return kind.envelope.model_validate(document)
    except ValidationError as error:
        errors = root_causes(error.errors(include_url=False))
        metadata = document.get("metadata")
        name = metadata.get("name") if isinstance(metadata, dict) else None
        subject = f"{kind.kind} {name}" if isinstance(name, str) and name else kind.kind
        raise ManifestError([_problem(e, node, source, subject) for e in errors]) from None


def root_causes(errors: list[Any]) -> list[Any]:
    """Drop a "too short" error on a list whose item already failed: it is only the echo of it."""
    locs = [tuple(e["loc"]) for e in errors]
    return [
        e
        for e in errors
        if not (
            e["type"] == "too_short"
            and any(
                len(other) > len(e["loc"]) and other[: len(e["loc"])] == tuple(e["loc"]) for other in locs
            )
        )
    ]


def _problem(error: Any, root: yaml.Node | None, source: str, subject: str) -> Problem:
    loc = tuple(error["loc"])
    return Problem(source, _line_of(root, loc), format_path(loc), describe(error), subject=subject)


def format_path(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif str(part).startswith(("function-", "tagged-union")):
            continue
        else:
            text += f".{part}" if text else str(part)
    return text


def describe(error: Any) -> str:
    """A pydantic error as a sentence that says what is wrong with the value."""
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    if kind == "extra_forbidden":
        return "unknown field (check its spelling and indentation)"
    if kind == "missing":
        return "is required"
    if kind in ("less_than_equal", "less_than"):
        bound = ctx.get("le", ctx.get("lt"))
        return (
            f"{value!r} is above {bound}" if kind == "less_than_equal" else f"{value!r} is not below {bound}"
        )
    if kind in ("greater_than_equal", "greater_than"):
        bound = ctx.get("ge", ctx.get("gt"))
        return (
            f"{value!r} is below {bound}"
            if kind == "greater_than_equal"
            else f"{value!r} is not above {bound}"
        )
    if kind == "string_pattern_mismatch":
        return f"{value!r} does not match {ctx.get('pattern')}"
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message


def line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The line of the field at `loc` (manifest spelling), or of its nearest present parent."""
    return _line_of(node, loc)


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    if node is None:
        return None
    found = node
    for part in loc:
        child = None
        if isinstance(found, yaml.MappingNode):
            child = next((v for k, v in found.value if k.value == part), None)
            if child is None:  # an unknown key: point at the key itself
                child = next((k for k, _ in found.value if k.value == part), None)
        elif isinstance(found, yaml.SequenceNode) and isinstance(part, int) and part < len(found.value):
            child = found.value[part]
        if child is None:
            break
        found = child
    return found.start_mark.line + 1
