"""What the real control plane costs: its build, its start and its footprint at rest.

    python -m tests.controlplane.benchmark [--cold] [--starts 3] [--rest 30] [--out docs/benchmarks.md]

`--cold` builds the binary again with an empty Go build cache and an empty module cache (in a
temporary folder, so the machine's caches stay), as a fresh machine would: the module download and
the compile are timed apart. Then the control plane is started `--starts` times (to `/readyz`, the
`default` ServiceAccount and four Ready KWOK nodes), and on the last start left alone for `--rest`
seconds while each component's CPU time and resident memory are read from /proc. Figures are
printed and written between markers in docs/benchmarks.md (other sections stay).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import platform
import statistics
import subprocess
import tempfile
import time
from collections.abc import Sequence

from analysis import markdown
from tests.controlplane import cluster

SECTION = "controlplane-benchmark"
HERE = pathlib.Path(__file__).resolve().parent
TICKS = os.sysconf("SC_CLK_TCK")


def cold_build() -> list[str]:
    """Download the modules and compile into empty caches; the lines of the report."""
    with tempfile.TemporaryDirectory(prefix="controlplane-cold-") as scratch:
        env = {
            **os.environ,
            "GOMODCACHE": f"{scratch}/mod",
            "GOCACHE": f"{scratch}/build",
            "CGO_ENABLED": "0",
            "GOFLAGS": "-modcacherw",  # so the temporary module cache can be removed
        }
        started = time.monotonic()
        subprocess.run(["go", "mod", "download"], cwd=HERE, env=env, check=True)
        downloaded = time.monotonic() - started
        started = time.monotonic()
        out = pathlib.Path(scratch) / "controlplane"
        version = f"-X k8s.io/component-base/version.gitVersion={cluster.KUBERNETES_VERSION}"
        subprocess.run(
            ["go", "build", "-trimpath", "-ldflags", f"-s -w {version}", "-o", str(out), "."],
            cwd=HERE,
            env=env,
            check=True,
        )
        compiled = time.monotonic() - started
        modules, build = _size(pathlib.Path(scratch) / "mod"), _size(pathlib.Path(scratch) / "build")
    return [
        f"- cold build on a fresh machine: module download {downloaded:.0f} s ({modules / 2**20:.0f} MiB of "
        f"module cache), compile and link {compiled / 60:.1f} min ({build / 2**30:.1f} GiB of build cache)",
    ]


def starts(count: int, rest: float) -> list[str]:
    seconds = []
    lines = []
    for attempt in range(count):
        with tempfile.TemporaryDirectory(prefix="controlplane-bench-") as folder:
            started = time.monotonic()
            with cluster.ControlPlane(pathlib.Path(folder)) as plane:
                seconds.append(time.monotonic() - started)
                if attempt == count - 1:
                    lines = _at_rest(plane, rest)
    each = ", ".join(f"{s:.1f}" for s in seconds)
    return [
        f"- warm start to `/readyz`, the default ServiceAccount and 4 Ready KWOK nodes: median "
        f"{statistics.median(seconds):.1f} s over {count} starts (each: {each})",
        *lines,
    ]


def _at_rest(plane: cluster.ControlPlane, rest: float) -> list[str]:
    before = {name: _cpu_seconds(p.pid) for name, p in plane.processes.items()}
    time.sleep(rest)  # a footprint at rest needs wall time to pass
    lines = [f"- at rest over {rest:.0f} s, per component (CPU as a share of one core; resident memory):"]
    total_rss = 0
    for name, process in plane.processes.items():
        cpu = (_cpu_seconds(process.pid) - before[name]) / rest
        rss = _rss_bytes(process.pid)
        total_rss += rss
        lines.append(f"  - {name}: {cpu * 100:.1f} % CPU, {rss / 2**20:.0f} MiB")
    lines.append(f"  - together: {total_rss / 2**20:.0f} MiB resident")
    return lines


def _cpu_seconds(pid: int) -> float:
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def _rss_bytes(pid: int) -> int:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _size(folder: pathlib.Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.controlplane.benchmark", description=__doc__)
    parser.add_argument("--cold", action="store_true", help="also build into empty caches (minutes)")
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--rest", type=float, default=30.0, help="seconds at rest to measure")
    parser.add_argument("--out", type=pathlib.Path, help="markdown file to update (docs/benchmarks.md)")
    args = parser.parse_args(argv)
    lines = [
        "## Control plane (tests/controlplane)",
        "",
        f"Command: `python -m tests.controlplane.benchmark{' --cold' if args.cold else ''}` on "
        f"{os.cpu_count()} cores ({platform.machine()}); Kubernetes {cluster.KUBERNETES_VERSION}, one "
        "binary for kube-apiserver, kube-controller-manager, kube-scheduler, etcd and KWOK.",
        "",
        f"- binary: {cluster.BINARY.stat().st_size / 2**20:.0f} MiB (stripped)",
    ]
    if args.cold:
        lines += cold_build()
    lines += starts(args.starts, args.rest)
    text = "\n".join(lines)
    print(text)
    if args.out:
        markdown.write_section(args.out, SECTION, text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
