"""`modelrelease plan --base REF`: which releases a change touches, from Git.

A release is changed when its file differs from REF (or is new), or when an AnalysisTemplate
it names is in a changed file: a new threshold changes how the rollout will be judged.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import git

from controller import manifests, releasetree
from controller.resources import kinds


class BaseError(ValueError):
    """The paths are not in a Git work tree, or REF does not name a commit there."""


def changed_files(paths: Sequence[Path], base: str) -> set[Path]:
    """Files under `paths` that differ from `base` (committed, staged, unstaged or untracked)."""
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
    relative = [str(p.resolve().relative_to(root)) for p in paths]
    listed = repo.git.diff("--name-only", "--no-renames", base, "--", *relative).splitlines()
    listed += repo.git.ls_files("--others", "--exclude-standard", "--", *relative).splitlines()
    return {(root / name).resolve() for name in listed if name}


def changed_releases(tree: releasetree.Tree, paths: Sequence[Path], base: str) -> list[manifests.Manifest]:
    changed = changed_files(paths, base)
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
        uses = {template for _, template in releasetree.template_refs(release.spec)}
        if manifest.source in touched or uses & templates:
            chosen.append(manifest)
    return chosen
