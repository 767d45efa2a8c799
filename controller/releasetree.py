"""A release repository read as a whole: every manifest under some paths, and what they refer to.

`modelrelease validate`, `modelrelease plan` and the GitSource read a repository the same way:
folders are walked (hidden ones and those listed in `.modelreleaseignore` left out), every file
is checked, and then the files are checked against each other — names unique per namespace,
the AnalysisTemplates and routes a release names present in the repository (or declared external
in its `modelrelease.dev/external-refs` annotation).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller import manifests as manifests_
from controller.resources import kinds, meta, modelrelease

IGNORE_FILE = ".modelreleaseignore"
EXTERNAL_REFS = f"{meta.GROUP}/external-refs"
YAML_SUFFIXES = (".yaml", ".yml")


@dataclass
class Tree:
    """What a set of paths holds; `problems` by file, `manifests` only from files without any."""

    manifests: list[manifests_.Manifest] = field(default_factory=list)
    foreign: list[manifests_.Foreign] = field(default_factory=list)
    problems: list[manifests_.Problem] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def bad_files(self) -> set[str]:
        return {p.source for p in self.problems}

    def files_with_content(self) -> set[str]:
        """Files that hold something: one of our manifests, a foreign object or a problem."""
        return {m.source for m in self.manifests} | {f.source for f in self.foreign} | self.bad_files

    def templates(self) -> dict[str, Any]:
        return {
            m.resource.metadata.name: m.resource.spec
            for m in self.manifests
            if isinstance(m.resource, kinds.AnalysisTemplate)
        }


def read_paths(paths: Sequence[Path], *, root: Path | None = None, cross: bool = True) -> Tree:
    """Read files and folders; sources are shown relative to `root` when given (a repository).
    `cross`: also check the files against each other (references, unique names)."""
    tree = Tree()
    for path, named in _files(paths):
        source = str(path.relative_to(root)) if root is not None else str(path)
        tree.files.append(source)
        try:
            if path.stat().st_size > manifests_.MAX_MANIFEST_BYTES:  # not even read: quarantined alone
                limit = manifests_.MAX_MANIFEST_BYTES
                tree.problems.append(
                    manifests_.Problem(source, None, "", f"is over {limit} bytes, the limit for a file")
                )
                continue
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
            tree.problems.append(manifests_.Problem(source, None, "", f"cannot read: {reason}"))
            continue
        try:
            loaded = manifests_.read_text(text, source, in_folder=not named)
        except manifests_.ManifestError as error:
            tree.problems.extend(error.problems)
            continue
        tree.manifests.extend(loaded.manifests)
        tree.foreign.extend(loaded.foreign)
    if cross:
        tree.problems.extend(cross_check(tree))
    return tree


def _files(paths: Sequence[Path]) -> Iterator[tuple[Path, bool]]:
    """Each file to read, and whether it was named (True) or found in a folder (False)."""
    for path in paths:
        if path.is_dir():
            ignored = _ignore_patterns(path)
            for found in sorted(path.rglob("*")):
                relative = found.relative_to(path).as_posix()
                if (
                    found.is_file()
                    and found.suffix in YAML_SUFFIXES
                    and not any(part.startswith(".") for part in found.relative_to(path).parts)
                    and not any(_matches(relative, pattern) for pattern in ignored)
                ):
                    yield found, False
        else:
            yield path, True  # a missing file is reported when it is read


def _ignore_patterns(folder: Path) -> list[str]:
    ignore = folder / IGNORE_FILE
    if not ignore.is_file():
        return []
    lines = (line.strip() for line in ignore.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _matches(relative: str, pattern: str) -> bool:
    """gitignore-like: `dir/` or `dir` ignores the folder, globs match paths and names."""
    stem = pattern.rstrip("/")
    return (
        relative == stem
        or relative.startswith(stem + "/")
        or fnmatch.fnmatch(relative, stem)
        or fnmatch.fnmatch(relative.rsplit("/", 1)[-1], stem)
    )


def cross_check(tree: Tree) -> list[manifests_.Problem]:
    problems = _duplicates(tree)
    templates = {
        (_namespace(m), m.resource.metadata.name)
        for m in tree.manifests
        if isinstance(m.resource, kinds.AnalysisTemplate)
    }
    routes = {(f.kind, f.namespace, f.name) for f in tree.foreign}
    for manifest in tree.manifests:
        release = manifest.resource
        if not isinstance(release, kinds.ModelRelease):
            continue
        namespace = _namespace(manifest)
        external = _external_refs(release)
        for loc, template in template_refs(release.spec):
            if (namespace, template) not in templates and ("AnalysisTemplate", template) not in external:
                problems.append(
                    _at(
                        manifest,
                        loc,
                        f"AnalysisTemplate {template!r} is not in the repository"
                        f"{_in(namespace)}; add it, or list AnalysisTemplate/{template} in the "
                        f"{EXTERNAL_REFS} annotation if it is managed elsewhere",
                    )
                )
        problems += _workload_ref_problems(tree, manifest, external)
        route = _route_ref(release.spec.traffic_routing)
        if route is not None:
            loc, kind, name = route
            if (kind, namespace, name) not in routes and (kind, name) not in external:
                problems.append(
                    _at(
                        manifest,
                        loc,
                        f"{kind} {name!r} is not in the repository{_in(namespace)}; add it, or list "
                        f"{kind}/{name} in the {EXTERNAL_REFS} annotation if it is managed elsewhere",
                    )
                )
    return problems


def _workload_ref_problems(
    tree: Tree, manifest: manifests_.Manifest, external: set[tuple[str, str]]
) -> list[manifests_.Problem]:
    release = manifest.resource
    assert isinstance(release, kinds.ModelRelease)
    ref = release.spec.serving.workload_ref
    if (
        ref is None
        or referenced_deployment(tree, manifest) is not None
        or ("Deployment", ref.name) in external
    ):
        return []
    namespace = _namespace(manifest)
    loc = ("spec", "serving", "workloadRef", "name")
    named = [f for f in tree.foreign if f.name == ref.name and f.namespace == namespace]
    if named:
        other = named[0]
        return [
            _at(
                manifest,
                loc,
                f"{ref.name!r} is a {other.kind} ({other.source}:{other.line}), not a Deployment: "
                "workloadRef adopts the pod template of a Deployment only",
            )
        ]
    return [
        _at(
            manifest,
            loc,
            f"Deployment {ref.name!r} is not in the repository{_in(namespace)}; add it (a chart rendered "
            f"into the repository), or list Deployment/{ref.name} in the {EXTERNAL_REFS} annotation if it is "
            "deployed from elsewhere",
        )
    ]


def referenced_deployment(tree: Tree, manifest: manifests_.Manifest) -> manifests_.Foreign | None:
    """The Deployment a release's workloadRef names, when the files hold it (same namespace)."""
    release = manifest.resource
    assert isinstance(release, kinds.ModelRelease)
    ref = release.spec.serving.workload_ref
    if ref is None:
        return None
    namespace = _namespace(manifest)
    return next(
        (
            f
            for f in tree.foreign
            if f.kind == "Deployment" and f.name == ref.name and f.namespace == namespace
        ),
        None,
    )


@dataclass(frozen=True)
class Autoscaler:
    """An HPA or a KEDA ScaledObject in the files that sizes a release through its /scale."""

    kind: str
    name: str
    source: str
    minimum: int
    maximum: int


AUTOSCALER_DEFAULTS = {  # (min, max) when the object leaves them out
    "HorizontalPodAutoscaler": ("minReplicas", 1, "maxReplicas", None),
    "ScaledObject": ("minReplicaCount", 0, "maxReplicaCount", 100),
}


def autoscaler_of(tree: Tree, manifest: manifests_.Manifest) -> Autoscaler | None:
    release = manifest.resource
    assert isinstance(release, kinds.ModelRelease)
    namespace = _namespace(manifest)
    for found in tree.foreign:
        if found.kind not in AUTOSCALER_DEFAULTS or found.namespace != namespace:
            continue
        spec = found.document.get("spec") or {}
        target = spec.get("scaleTargetRef") or {}
        if target.get("kind") != "ModelRelease" or target.get("name") != release.metadata.name:
            continue
        low_key, low, high_key, high = AUTOSCALER_DEFAULTS[found.kind]
        maximum = spec.get(high_key, high)
        if not isinstance(maximum, int):
            continue
        return Autoscaler(found.kind, found.name, found.source, int(spec.get(low_key, low)), maximum)
    return None


def _duplicates(tree: Tree) -> list[manifests_.Problem]:
    seen: dict[tuple[str, str, str], manifests_.Manifest] = {}
    problems = []
    for manifest in tree.manifests:
        kind = str(getattr(manifest.resource, "kind", ""))
        key = (kind, _namespace(manifest), manifest.resource.metadata.name)  # type: ignore[attr-defined]
        first = seen.setdefault(key, manifest)
        if first is not manifest:
            problems.append(
                _at(
                    manifest,
                    ("metadata", "name"),
                    f"{kind} {key[2]!r}{_in(key[1])} is also defined at {first.source}:{first.line}; "
                    "names are unique per namespace",
                )
            )
    return problems


def template_refs(spec: modelrelease.ModelReleaseSpec) -> Iterator[tuple[tuple[Any, ...], str]]:
    canary, blue_green = spec.strategy.canary, spec.strategy.blue_green
    if canary is not None:
        for index, step in enumerate(canary.steps):
            if step.analysis is not None:
                loc = ("spec", "strategy", "canary", "steps", index, "analysis", "template")
                yield loc, step.analysis.template
        if canary.analysis is not None:
            yield ("spec", "strategy", "canary", "analysis", "template"), canary.analysis.template
    if blue_green is not None:
        for key, gate in (
            ("prePromotionAnalysis", blue_green.pre_promotion_analysis),
            ("postPromotionAnalysis", blue_green.post_promotion_analysis),
        ):
            if gate is not None:
                yield ("spec", "strategy", "blueGreen", key, "template"), gate.template


def _route_ref(routing: modelrelease.TrafficRouting) -> tuple[tuple[Any, ...], str, str] | None:
    if routing.gateway_api is not None:
        loc = ("spec", "trafficRouting", "gatewayAPI", "httpRoute")
        return loc, "HTTPRoute", routing.gateway_api.http_route
    if routing.istio is not None:
        return (
            ("spec", "trafficRouting", "istio", "virtualService"),
            "VirtualService",
            routing.istio.virtual_service,
        )
    return None


def _external_refs(release: kinds.ModelRelease) -> set[tuple[str, str]]:
    listed = release.metadata.annotations.get(EXTERNAL_REFS, "")
    refs = set()
    for entry in listed.split(","):
        kind, _, name = entry.strip().partition("/")
        if name:
            refs.add((kind, name))
    return refs


def _namespace(manifest: manifests_.Manifest) -> str:
    return str(getattr(manifest.resource.metadata, "namespace", None) or "")  # type: ignore[attr-defined]


def _in(namespace: str) -> str:
    return f" in namespace {namespace}" if namespace else ""


def _at(manifest: manifests_.Manifest, loc: tuple[Any, ...], message: str) -> manifests_.Problem:
    line = manifests_.line_of(manifest.node, loc) or manifest.line
    resource = manifest.resource
    subject = f"{getattr(resource, 'kind', '')} {resource.metadata.name}".strip()  # type: ignore[attr-defined]
    return manifests_.Problem(manifest.source, line, manifests_.format_path(loc), message, subject=subject)
