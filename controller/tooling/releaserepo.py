"""A release repository on this machine for the demo and the benchmarks: a bare remote (what GitHub
would hold) and a team member's clone of it, made from gitops-repo-template/.

Changes go in as a merged PR would put them: edit one line of a release file, commit, push to main;
or merge a branch someone (modelrelease, proposing a model version) pushed.
"""

from __future__ import annotations

import pathlib
import shutil

import git

from controller import yamledit

ROOT = pathlib.Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "gitops-repo-template"
VERSION = ("spec", "model", "version")


class LocalReleaseRepo:
    def __init__(self, work: pathlib.Path) -> None:
        self.remote_path = work / "releases.git"
        self.clone_path = work / "release-repo"
        # Only git commands (`repo.git`): GitPython's object reads would leave cat-file children.
        self.remote = git.Repo.init(self.remote_path, bare=True, initial_branch="main")
        self.clone = git.Repo.init(self.clone_path, initial_branch="main")
        self.clone.git.config("user.name", "Ada Reviewer")
        self.clone.git.config("user.email", "ada@example.com")
        self.clone.create_remote("origin", self.url)

    @property
    def url(self) -> str:
        return self.remote_path.as_uri()

    def create_from_template(self, releases: dict[str, pathlib.Path], templates: list[pathlib.Path]) -> str:
        """The template's layout and tooling, with these release folders and analysis templates
        instead of its examples; the first commit on main."""
        shutil.copytree(TEMPLATE, self.clone_path, dirs_exist_ok=True)
        for folder in ("releases", "analysis-templates"):
            shutil.rmtree(self.clone_path / folder)
        for relative, source in releases.items():
            target = self.clone_path / "releases" / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        (self.clone_path / "analysis-templates").mkdir()
        for source in templates:
            shutil.copyfile(source, self.clone_path / "analysis-templates" / source.name)
        return self.commit_all("Start the release repository from gitops-repo-template")

    def set_version(self, relative: str, release: str, version: str) -> str:
        """Merge the one-line change that releases `version`: the new commit on main."""
        self.clone.git.pull("--ff-only", "origin", "main")
        path = self.clone_path / relative
        edited = yamledit.set_scalar(
            path.read_text(), kind="ModelRelease", name=release, path=VERSION, value=version
        )
        path.write_text(edited)
        return self.commit_all(f"Release {release} model {version}")

    def branch_tip(self, branch: str) -> str | None:
        """The commit `branch` points at on the remote; None while it does not exist."""
        found = self.remote.git.rev_parse(
            "--verify", "--quiet", f"refs/heads/{branch}", with_exceptions=False
        )
        return str(found).strip() or None

    def check_out(self, branch: str) -> None:
        """Look at a pushed branch in the clone, as a reviewer does with a PR."""
        self.clone.git.fetch("--quiet", "origin", f"+refs/heads/{branch}:refs/remotes/origin/{branch}")
        self.clone.git.checkout("--quiet", "-B", branch, f"origin/{branch}")

    def merge(self, branch: str, title: str) -> str:
        """Merge the PR of `branch` into main (a merge commit, as GitHub's button makes); the merge."""
        self.clone.git.checkout("--quiet", "main")
        self.clone.git.pull("--quiet", "--ff-only", "origin", "main")
        self.clone.git.merge("--quiet", "--no-ff", "-m", title, f"origin/{branch}")
        self.clone.git.push("--quiet", "origin", "HEAD:refs/heads/main")
        return str(self.clone.git.rev_parse("HEAD"))

    def subject(self, commit: str) -> str:
        return str(self.remote.git.log("-1", "--format=%s", commit))

    def commit_all(self, message: str) -> str:
        self.clone.git.add("--all")
        self.clone.git.commit("--quiet", "-m", message)
        self.clone.git.push("--quiet", "origin", "HEAD:refs/heads/main")
        return str(self.clone.git.rev_parse("HEAD"))

    def last_commit(self) -> str:
        """`git log -1` on the remote's main, as a person would read it."""
        return str(self.remote.git.log("-1", "--format=commit %H%nAuthor: %an <%ae>%n%n%B", "main")).rstrip()

    def show(self, relative: str) -> str:
        return str(self.remote.git.show(f"main:{relative}", strip_newline_in_stdout=False))
