"""A Git remote through GitPython: shallow fetches, commits found by trailer, pushes that survive races.

Credentials never enter a URL, an argument list or a message: an HTTPS token travels as an
`http.extraHeader` set through git's environment (GIT_CONFIG_*), an SSH key as a 0600 file named
by GIT_SSH_COMMAND, and every error text is scrubbed of the secret values before it leaves.
The local clone is a cache in a temporary folder: losing it (a restart) costs a fetch, nothing else.
"""

from __future__ import annotations

import base64
import contextlib
import re
import shutil
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import git

from controller import errors

T = TypeVar("T")

HISTORY_DEPTH = 200  # commits searched for an action's trailer: far more than land between two looks
PUSH_ATTEMPTS = 5
TRAILER = "Modelrelease-Action"  # the idempotency key of the write a commit carries
AUTHOR = git.Actor("modelrelease", "modelrelease@users.noreply.modelrelease.dev")

AUTH_REFUSED = re.compile(
    r"could not read (username|password)|authentication failed|permission denied \(publickey|"
    r"returned error: 40[13]",
    re.IGNORECASE,
)
# Failures a later try may not see: the network, the server, a race on the branch.
TRANSIENT = re.compile(
    r"could not resolve host|connection (refused|reset|timed out)|timed out|"
    r"the remote end hung up|returned error: 5\d\d|early eof|temporarily|"
    r"non-fast-forward|fetch first|cannot lock ref|failed to push some refs",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Credentials:
    username: str | None = None
    password: str | None = None  # or token
    ssh_private_key: str | None = None
    known_hosts: str | None = None

    def secrets(self) -> tuple[str, ...]:
        values = [v for v in (self.password, self.ssh_private_key) if v]
        if self.password:
            values.append(self.basic_auth())
        return tuple(values)

    def basic_auth(self) -> str:
        pair = f"{self.username or 'git'}:{self.password}"
        return base64.b64encode(pair.encode()).decode()


@dataclass(frozen=True)
class Remote:
    url: str
    branch: str
    credentials: Credentials = field(default_factory=Credentials)

    def __str__(self) -> str:  # what logs and messages may show
        return f"{redact_url(self.url)}@{self.branch}"


def redact_url(url: str) -> str:
    """A URL without any user:password it carries."""
    return re.sub(r"//[^/@]*@", "//***@", url)


class GitRemoteError(errors.TransientError):
    pass


class GitRemotePermanentError(errors.PermanentError):
    pass


@dataclass(frozen=True)
class Pushed:
    commit: str
    branch: str
    attempts: int


class Workspace:
    """A local clone of one remote, fetched on demand; methods raise GitRemoteError(s) with clean text.

    Everything goes through git commands (`repo.git`), none through GitPython's object database,
    which would keep `git cat-file` children alive for the life of the process."""

    def __init__(self, remote: Remote, root: Path | None = None) -> None:
        self.remote = remote
        self._dir = Path(tempfile.mkdtemp(prefix="modelrelease-git-", dir=root))
        self._repo = git.Repo.init(self._dir / "clone")
        self._repo.git.config("user.name", AUTHOR.name)
        self._repo.git.config("user.email", AUTHOR.email)
        self._repo.create_remote("origin", remote.url)

    @property
    def path(self) -> Path:
        return Path(self._repo.working_tree_dir or ".")

    def close(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)

    # ---- reading ---------------------------------------------------------------------------------

    def checkout_tip(self, branch: str | None = None, *, depth: int = 1) -> str:
        """Fetch the branch's tip (shallow) and check it out; the commit's sha."""
        tip = self.fetch(branch or self.remote.branch, depth=depth)
        if tip is None:
            raise GitRemotePermanentError(f"{self.remote}: no branch {branch or self.remote.branch}")
        self._run(lambda: self._repo.git.checkout("--force", "--detach", tip))
        self._run(lambda: self._repo.git.clean("-fdx"))
        return tip

    def fetch(self, branch: str, *, depth: int) -> str | None:
        """The remote branch's tip after fetching it, or None when the remote has no such branch."""
        refspec = f"+refs/heads/{branch}:refs/remotes/origin/{branch}"
        try:
            self._run(lambda: self._repo.git.fetch("origin", refspec, f"--depth={depth}", "--no-tags"))
        except GitRemotePermanentError as error:
            if "couldn't find remote ref" in str(error).lower():
                return None
            raise
        return self._git("rev-parse", f"origin/{branch}")

    def find_trailer(self, branch: str, key: str) -> str | None:
        """The newest commit on the fetched branch whose message carries `TRAILER: key`."""
        found = self._run(
            lambda: self._repo.git.log(
                f"origin/{branch}",
                f"-{HISTORY_DEPTH}",
                "--format=%H",
                "--fixed-strings",
                f"--grep={TRAILER}: {key}",
            )
        )
        return found.split()[0] if found.strip() else None

    def read(self, relative: str) -> str:
        return (self.path / relative).read_text(encoding="utf-8")

    # ---- writing ---------------------------------------------------------------------------------

    def commit_and_push(
        self,
        *,
        base: str,
        target: str,
        from_base: bool = False,
        relative: str,
        edit: Callable[[str], str | None],
        message: str,
        key: str,
    ) -> Pushed | None:
        """Commit `edit` of one file on top of the target branch (or `base` when the target is new)
        and push it; on a lost race fetch again and re-apply the edit on the new tip (what a rebase
        of a one-file change does, without its conflicts), then push again. None when `edit` finds nothing to
        change. The key goes in a trailer, so a retry after a crash can find the push it made.

        `from_base`: the target is a branch of our own (rollback/<release>), started afresh from the
        base's tip and force-pushed, so it never carries a stale earlier rollback."""
        for attempt in range(1, PUSH_ATTEMPTS + 1):
            target_tip = self.fetch(target, depth=HISTORY_DEPTH)
            base_tip = self.fetch(base, depth=HISTORY_DEPTH)
            if base_tip is None:
                raise GitRemotePermanentError(f"{self.remote}: no branch {base}")
            for branch, branch_tip in ((target, target_tip), (base, base_tip)):
                done = self.find_trailer(branch, key) if branch_tip is not None else None
                if done is not None:  # pushed before, by us or by a process that died after pushing
                    return Pushed(commit=done, branch=branch, attempts=0)
            tip = base_tip if from_base or target_tip is None else target_tip
            self._git("checkout", "--force", "-B", "modelrelease-write", tip)
            changed = edit(self.read(relative))
            if changed is None:
                return None
            (self.path / relative).write_text(changed, encoding="utf-8")
            self._git("add", "--", relative)
            self._git("commit", "--quiet", "-m", f"{message.rstrip()}\n\n{TRAILER}: {key}")
            commit = self._git("rev-parse", "HEAD")
            try:
                force = ("--force",) if from_base else ()
                self._git("push", "origin", f"HEAD:refs/heads/{target}", *force)
            except GitRemoteError as error:
                if _refused(str(error)):
                    raise GitRemotePermanentError(
                        f"{self.remote} refused the push to {target} (a protected branch or a hook): {error}"
                    ) from None
                if attempt == PUSH_ATTEMPTS or not _lost_race(str(error)):
                    raise
                continue  # someone pushed between our fetch and our push: start again from their tip
            return Pushed(commit=commit, branch=target, attempts=attempt)
        raise AssertionError("unreachable")

    # ---- plumbing --------------------------------------------------------------------------------

    def _git(self, command: str, *args: str) -> str:
        return self._run(lambda: str(getattr(self._repo.git, command)(*args)))

    def _run(self, call: Callable[[], T]) -> T:
        with self._environment():
            try:
                return call()
            except git.GitCommandError as error:
                text = self._scrub(f"{(error.stderr or '').strip()} {(error.stdout or '').strip()}".strip())
                summary = f"git {error.command[1] if len(error.command) > 1 else ''} on {self.remote}: {text}"
                if AUTH_REFUSED.search(text):
                    raise GitRemotePermanentError(
                        f"{self.remote} refused the credentials (or asked for some and none were given): "
                        "check the Secret the spec names"
                    ) from None
                if TRANSIENT.search(text):
                    raise GitRemoteError(summary) from None
                raise GitRemotePermanentError(summary) from None

    @contextlib.contextmanager
    def _environment(self) -> Iterator[None]:
        env = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "/bin/false", "SSH_ASKPASS": "/bin/false"}
        creds = self.remote.credentials
        key_dir = None
        if creds.password:
            env |= {
                "GIT_CONFIG_COUNT": "1",
                "GIT_CONFIG_KEY_0": "http.extraHeader",
                "GIT_CONFIG_VALUE_0": f"Authorization: Basic {creds.basic_auth()}",
            }
        if creds.ssh_private_key:
            key_dir = Path(tempfile.mkdtemp(prefix="modelrelease-ssh-"))
            key = key_dir / "id"
            key.write_text(creds.ssh_private_key.rstrip("\n") + "\n", encoding="utf-8")
            key.chmod(stat.S_IRUSR | stat.S_IWUSR)
            known = key_dir / "known_hosts"
            known.write_text(creds.known_hosts or "", encoding="utf-8")
            checking = "yes" if creds.known_hosts else "accept-new"
            env["GIT_SSH_COMMAND"] = (
                f"ssh -i {key} -o IdentitiesOnly=yes -o UserKnownHostsFile={known} "
                f"-o StrictHostKeyChecking={checking} -o BatchMode=yes"
            )
        try:
            with self._repo.git.custom_environment(**env):
                yield
        finally:
            if key_dir is not None:
                shutil.rmtree(key_dir, ignore_errors=True)

    def _scrub(self, text: str) -> str:
        for secret in self.remote.credentials.secrets():
            text = text.replace(secret, "***")
        return redact_url(text)


def _lost_race(text: str) -> bool:
    """Someone pushed first: the branch moved under us. Fetching and re-applying the edit helps."""
    return bool(re.search(r"non-fast-forward|fetch first|cannot lock ref|stale info", text, re.IGNORECASE))


def _refused(text: str) -> bool:
    """The server will not take this push (a hook, branch protection, a read-only remote): trying
    again at once cannot help, so it is not a lost race."""
    return bool(
        re.search(r"remote rejected|hook declined|protected branch|read.only", text, re.IGNORECASE)
    ) and not _lost_race(text)


class Workspaces:
    """One clone per remote for the life of the process (a cache: a restart only costs a fetch).

    A clone has one HEAD and one index, and the controller reaches it from several threads at once —
    a GitSource's sync, a release's write-back or version bump, a reconcile looking for a commit it
    owes. `using` hands a clone to one caller at a time for a whole sequence of operations: without
    it a sync's checkout between a bump's commit and its push made the push send the synced commit
    under the bump branch's name (seen in `make demo`)."""

    def __init__(self, root: Path | None = None) -> None:
        self._root = root
        self._open: dict[Remote, Workspace] = {}
        self._locks: dict[Remote, threading.RLock] = {}
        self._guard = threading.Lock()

    def get(self, remote: Remote) -> Workspace:
        """The clone, for a caller that is alone with it (tests); others use `using`."""
        with self._guard:
            if remote not in self._open:
                self._open[remote] = Workspace(remote, self._root)
                self._locks[remote] = threading.RLock()
            return self._open[remote]

    @contextlib.contextmanager
    def using(self, remote: Remote) -> Iterator[Workspace]:
        """The clone of `remote`, held by this thread until the block ends."""
        workspace = self.get(remote)
        with self._locks[remote]:
            yield workspace

    def close(self) -> None:
        for workspace in self._open.values():
            workspace.close()
        self._open.clear()
