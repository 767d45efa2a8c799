"""The controller as a child process, as the demo and the integration tests run it."""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import subprocess
import sys
import time
import urllib.request


def controller_command(kubeconfig: pathlib.Path, *flags: str, scripted: bool = False) -> list[str]:
    """`modelrelease run` against a kubeconfig, from this checkout's interpreter; with `scripted`, its
    analysis verdicts come from a ConfigMap (`scripted_controller`), not from the judge."""
    entry = "controller.tooling.scripted_controller" if scripted else "controller"
    return [sys.executable, "-m", entry, "run", "--kubeconfig", str(kubeconfig), *flags]


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


def wait_ready(
    process: subprocess.Popen[bytes], url: str, log: pathlib.Path, *, timeout: float, what: str
) -> None:
    """Until `url` answers 200: a real server's readiness, polled with a deadline; RuntimeError with
    the end of its log if it exits first or never answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as answer:
            if answer.status == 200:
                return
        time.sleep(0.1)  # polling a real server's readiness, with a deadline
    raise RuntimeError(f"{what} did not become ready within {timeout:.0f}s")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used so far (/proc/PID/stat)."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM), in MiB."""
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/{pid}/status has no VmHWM line")
