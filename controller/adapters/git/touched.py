"""`modelrelease plan --base REF`: which releases a change touches, from Git.

A release is changed when its file differs from REF (or is new), or when an AnalysisTemplate
it names is in a changed file: a new threshold changes how the rollout will be judged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import git

from controller import manifests, releasetree
from controller.resources import kinds


class BaseError(ValueError):
    """The paths are not in a Git work tree, or REF does not name a commit there."""


@dataclass(frozen=True)
class Change:
    """A release the change touches: why it is included, and what it was at the base (None: new)."""

    manifest: manifests.Manifest
    why: str
    before: kinds.ModelRelease | None


def _repo(paths: Sequence[Path], base: str) -> tuple[git.Repo, Path]:
    first = paths[0].resolve()
    try:
        repo = git.Repo(first if first.is_dir() else first.parent, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError) as error:
        raise BaseError(f"{paths[0]} is not in a Git repository") from error
    root = Path(repo.working_tree_dir or ".").resolve()
    try:
        repo.commit(base)
    except (git.BadName, ValueError) as error:
        raise BaseError(
            f"no commit named {base!r} in {root} (fetch it first, e.g. git fetch origin)"
        ) from error
    return repo, root


def changed_files(paths: Sequence[Path], base: str) -> set[Path]:
    """Files under `paths` that differ from `base` (committed, staged, unstaged or untracked)."""
    repo, root = _repo(paths, base)
    relative = [str(p.resolve().relative_to(root)) for p in paths]
    listed = repo.git.diff("--name-only", "--no-renames", base, "--", *relative).splitlines()
    listed += repo.git.ls_files("--others", "--exclude-standard", "--", *relative).splitlines()
    return {(root / name).resolve() for name in listed if name}


def base_releases(paths: Sequence[Path], base: str) -> dict[tuple[str, str], kinds.ModelRelease]:
    """The ModelReleases under `paths` as `base` has them, by (namespace, name): what runs once the
    base is applied, so the stable a rollout starts from. Files that do not parse there are passed over."""
    repo, root = _repo(paths, base)
    relative = [str(p.resolve().relative_to(root)) for p in paths]
    found: dict[tuple[str, str], kinds.ModelRelease] = {}
    for name in repo.git.ls_tree("-r", "--name-only", base, "--", *relative).splitlines():
        if not name.endswith(releasetree.YAML_SUFFIXES):
            continue
        try:
            text = repo.git.show(f"{base}:{name}", strip_newline_in_stdout=False)
            loaded = manifests.read_text(text, name, in_folder=True)
        except (git.GitCommandError, manifests.ManifestError):
            continue
        for manifest in loaded.manifests:
            if isinstance(manifest.resource, kinds.ModelRelease):
                release = manifest.resource
                found[(release.metadata.namespace or "", release.metadata.name)] = release
    return found


def changed_releases(tree: releasetree.Tree, paths: Sequence[Path], base: str) -> list[Change]:
    changed = changed_files(paths, base)
    before = base_releases(paths, base)
    touched = {m.source for m in tree.manifests if Path(m.source).resolve() in changed}
    templates = {
        m.resource.metadata.name
        for m in tree.manifests
        if m.source in touched and isinstance(m.resource, kinds.AnalysisTemplate)
    }
    chosen = []
    for manifest in tree.manifests:
        release = manifest.resource
        if not isinstance(release, kinds.ModelRelease):
            continue
        was = before.get((release.metadata.namespace or "", release.metadata.name))
        uses = sorted({template for _, template in releasetree.template_refs(release.spec)} & templates)
        if manifest.source in touched:
            why = "its file changed" if was is not None else "new in this change"
        elif uses:
            why = f"AnalysisTemplate {', '.join(uses)} changed"
        else:
            continue
        if manifest.source in touched and uses:
            why += f"; AnalysisTemplate {', '.join(uses)} changed"
        chosen.append(Change(manifest, why, was))
    return chosen


def in_changed_files(
    problems: Sequence[manifests.Problem], paths: Sequence[Path], base: str
) -> list[manifests.Problem]:
    """The problems of files this change touches: the ones its PR comment must show."""
    changed = changed_files(paths, base)
    return [p for p in problems if Path(p.source).resolve() in changed]
