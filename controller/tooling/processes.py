"""The controller as a child process, as the demo and the integration tests run it."""

from __future__ import annotations

import pathlib
import signal
import subprocess
import sys


def controller_command(kubeconfig: pathlib.Path, *flags: str) -> list[str]:
    """`modelrelease run` against a kubeconfig, from this checkout's interpreter."""
    return [sys.executable, "-m", "controller", "run", "--kubeconfig", str(kubeconfig), *flags]


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, and SIGKILL after 10 seconds if it has not stopped."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
