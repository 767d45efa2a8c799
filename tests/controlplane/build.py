"""`make controlplane` and `make peers`: build a Go binary from the module proxy, saying how far it is.

The first build on a machine downloads about 470 MiB of modules and compiles some two thousand
packages (minutes, docs/testing.md); `go build` is silent meanwhile, so this counts the packages it
compiles (`-v`) against the total (`go list -deps`) and prints a line every few seconds. Later builds
come from Go's build cache and print one line. Standard library only: it runs before any venv.

usage: python3 tests/controlplane/build.py GO OUTPUT LDFLAGS [MODULE_DIR PACKAGE LABEL]
  (OUTPUT is relative to MODULE_DIR; without the last three: the control plane, `.` in this folder)
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
EVERY = 10.0  # seconds between two progress lines


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 6):
        print(__doc__, file=sys.stderr)
        return 2
    go, output, ldflags = argv[:3]
    here, package, label = (
        (pathlib.Path(argv[3]).resolve(), argv[4], argv[5])
        if len(argv) == 6
        else (HERE, ".", "control plane")
    )
    env = {**os.environ, "CGO_ENABLED": "0"}
    started = time.monotonic()
    print(f"{label}: fetching Go modules (go mod download)…", flush=True)
    subprocess.run([go, "mod", "download"], cwd=here, env=env, check=True)
    listed = subprocess.run(
        [go, "list", "-deps", package], cwd=here, env=env, check=True, capture_output=True, text=True
    )
    total = len(listed.stdout.split())
    build = [go, "build", "-v", "-trimpath", "-ldflags", ldflags, "-o", output, package]
    compiled, said = 0, time.monotonic()
    with subprocess.Popen(build, cwd=here, env=env, stderr=subprocess.PIPE, text=True) as process:
        assert process.stderr is not None
        for line in process.stderr:
            if line.startswith(("#", " ")) or " " in line.strip():  # a compiler message, not a package
                sys.stderr.write(line)
                continue
            compiled += 1
            if time.monotonic() - said >= EVERY:
                said = time.monotonic()
                print(
                    f"{label}: compiled {compiled} of {total} packages ({_minutes(said - started)})",
                    flush=True,
                )
    if process.returncode != 0:
        return process.returncode
    size = (here / output).stat().st_size / 2**20
    print(
        f"{label}: built {output} ({size:.0f} MiB) in {_minutes(time.monotonic() - started)}, "
        f"{compiled} of {total} packages compiled, the rest from the cache",
        flush=True,
    )
    return 0


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
