"""Real Git remotes for tests: a bare repository on disk, served as-is (file://) or over HTTP through
`git http-backend` behind Basic authentication, and a working clone to commit to them as a person would."""

from __future__ import annotations

import base64
import os
import pathlib
import shutil
import subprocess
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import git

GIT_CORE = pathlib.Path(
    subprocess.run(["git", "--exec-path"], capture_output=True, text=True, check=True).stdout.strip()
)
PERSON = git.Actor("Ada Reviewer", "ada@example.com")


@dataclass(frozen=True)
class Commit:
    hexsha: str
    message: str


class BareRemote:
    """A bare repository with a `main` branch; `url` is file://."""

    def __init__(self, root: pathlib.Path, name: str = "releases.git") -> None:
        self.path = root / name
        # Only git commands through `repo.git`: GitPython's object reads would leave cat-file children.
        self.repo = git.Repo.init(self.path, bare=True, initial_branch="main")
        self.repo.git.config("http.receivepack", "true")
        self.url = self.path.as_uri()

    def log(self, branch: str = "main") -> list[Commit]:
        """Newest first."""
        out = self.repo.git.log(branch, "--format=%H%x00%B%x1e", strip_newline_in_stdout=False)
        records = [r.strip("\n") for r in out.split("\x1e") if r.strip()]
        return [Commit(*record.split("\x00", 1)) for record in records]

    def show(self, path: str, branch: str = "main") -> str:
        return str(self.repo.git.show(f"{branch}:{path}", strip_newline_in_stdout=False))

    def add_hook(self, name: str, script: str) -> None:
        hook = self.path / "hooks" / name
        hook.write_text(script)
        hook.chmod(0o755)


class Clone:
    """A person's working copy of a remote: write files, commit, push."""

    def __init__(self, remote_url: str, path: pathlib.Path) -> None:
        self.path = path
        self.repo = git.Repo.init(path, initial_branch="main")
        self.repo.git.config("user.name", PERSON.name)
        self.repo.git.config("user.email", PERSON.email)
        self.repo.create_remote("origin", remote_url)

    def pull(self) -> None:
        self.repo.git.fetch("origin")
        self.repo.git.reset("--hard", "origin/main")

    def write(self, files: dict[str, str]) -> None:
        for name, text in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)

    def remove(self, *names: str) -> None:
        self.repo.git.rm("--quiet", *names)

    def copy_tree(self, source: pathlib.Path) -> None:
        shutil.copytree(source, self.path, dirs_exist_ok=True)

    def commit_and_push(self, message: str) -> str:
        self.repo.git.add("--all")
        self.repo.git.commit("-m", message)
        self.repo.git.push("origin", "HEAD:refs/heads/main")
        return str(self.repo.git.rev_parse("HEAD"))


class HttpGitServer:
    """`git http-backend` (smart HTTP, push included) behind Basic authentication, on 127.0.0.1.

    `authorizations` lists every Authorization header received, to check what a client sent.
    """

    def __init__(self, project_root: pathlib.Path, username: str, password: str) -> None:
        self.root = project_root
        self.expected = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        self.authorizations: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._cgi()

            def do_POST(self) -> None:
                self._cgi()

            def _cgi(self) -> None:
                given = self.headers.get("Authorization")
                if given:
                    server.authorizations.append(given)
                if given != server.expected:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="git"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                path, _, query = self.path.partition("?")
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                env = {
                    **os.environ,
                    "GIT_PROJECT_ROOT": str(server.root),
                    "GIT_HTTP_EXPORT_ALL": "1",
                    "PATH_INFO": path,
                    "QUERY_STRING": query,
                    "REQUEST_METHOD": self.command,
                    "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                    "CONTENT_LENGTH": str(len(body)),
                    "REMOTE_USER": "ci",
                    "REMOTE_ADDR": "127.0.0.1",
                    "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                    "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                }
                done = subprocess.run(
                    [str(GIT_CORE / "git-http-backend")],
                    input=body,
                    env=env,
                    capture_output=True,
                    check=False,
                )
                head, _, payload = done.stdout.partition(b"\r\n\r\n")
                headers = [line.split(":", 1) for line in head.decode().split("\r\n") if ":" in line]
                status = next((int(v.strip().split()[0]) for k, v in headers if k.lower() == "status"), 200)
                self.send_response(status)
                for key, value in headers:
                    if key.lower() != "status":
                        self.send_header(key, value.strip())
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}"

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"

    def __enter__(self) -> HttpGitServer:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def commits_with(remote: BareRemote, text: str, branch: str = "main") -> list[Commit]:
    return [c for c in remote.log(branch) if text in c.message]
