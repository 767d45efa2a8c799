"""`kubectl modelrelease report` and `explain` on a rollout the judge rolled back on a real
Prometheus (a shadow of model 3 disagreeing with stable on 10 % of requests, as in test_shadow.py):
the report replays the judge to the same decision, and its HTML page renders its plots in headless
Chromium (Debian's chromium-headless-shell) with no network."""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys
import time

from PIL import Image

from controller.tooling import fleet
from tests.cluster import harness, test_shadow
from tests.integration import prometheus_server

BIN = pathlib.Path(sys.executable).parent
CHROMIUM = "chromium-headless-shell"


def _plugin(kubeconfig: pathlib.Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "kubectl"), "modelrelease", *args, "--kubeconfig", str(kubeconfig)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
    )


def _chromium(tmp_path: pathlib.Path, *args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which(CHROMIUM)
    assert binary is not None, f"{CHROMIUM} is not installed (make test installs Debian's package)"
    flags = [
        "--no-sandbox",
        "--disable-gpu",
        f"--user-data-dir={tmp_path / 'chromium'}",
        "--window-size=1280,2400",
    ]
    return subprocess.run([binary, *flags, *args], capture_output=True, text=True, timeout=120)


def test_the_report_replays_the_rollback_and_its_page_renders_its_plots_in_headless_chromium(
    world: harness.World, kubeconfig: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    scenario = fleet.FleetScenario.from_document(
        {"requestsPerSecond": 3000, "versions": {"3": {"disagreement": 0.10}}}
    )
    serving = fleet.ServingFleet(world.kube, scenario, seed=7, namespace=world.namespace)
    server = fleet.FleetServer(serving, tmp_path / "targets.json", clock=time.time, tick=0.2).start()
    prometheus = prometheus_server.PrometheusServer(tmp_path, file_sd=tmp_path / "targets.json").start()
    world.create(test_shadow.SHADOW_TEMPLATE)
    world.create(test_shadow.ROUTE)
    controller = test_shadow.judged_controller(world, tmp_path, prometheus)
    try:
        world.create(test_shadow.shadow_release())
        world.wait_for_phase("ranker", "Succeeded")
        world.patch_release("ranker", {"spec": {"model": {"version": "3"}}})
        rolled = world.wait_for_phase("ranker", "RolledBack", timeout=120)
        page = tmp_path / "report.html"
        report = _plugin(kubeconfig, "report", "ranker", "--prometheus", prometheus.url, "--html", str(page))
        explained = _plugin(kubeconfig, "explain", "ranker")
    finally:
        controller.stop()
        prometheus.stop()
        server.stop()

    assert report.returncode == 0, report.stderr
    [recorded] = rolled["analysis"]
    assert (
        f"analysis {recorded['run']} (shadow, step 0 (shadow 100%, analysis shadow)): Fail" in report.stdout
    )
    assert "the judge decided Fail at look" in report.stdout, report.stdout
    assert "traffic to the canary during the step: 0% + 100% mirrored" in report.stdout
    assert re.search(r"agreement \(agreement\): fails at evidence ≥ \d+", report.stdout)
    assert explained.returncode == 0, explained.stderr
    assert explained.stdout.startswith("ranker is RolledBack (AnalysisFailed)")
    assert f"`kubectl modelrelease retry ranker -n {world.namespace}`" in explained.stdout

    text = page.read_text()
    assert not re.search(r"<script|\bsrc=|\bhref=|@import|url\(", text), "self-contained: nothing to fetch"
    shot = tmp_path / "report.png"
    taken = _chromium(tmp_path, f"--screenshot={shot}", page.as_uri())
    assert shot.exists(), taken.stderr
    with Image.open(shot) as image:
        assert image.size == (1280, 2400)
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 50, "the screenshot shows text and plots, not a blank page"
    dom = _chromium(tmp_path, "--dump-dom", page.as_uri()).stdout
    plots = re.findall(r'<svg class="plot" id="([^"]+)"', dom)
    # Traffic, then evidence and effect for each of the template's two metrics.
    assert plots == [
        "traffic-0",
        "evidence-0-agreement",
        "effect-0-agreement",
        "evidence-0-errors",
        "effect-0-errors",
    ]
    assert dom.count('class="series"') >= 5
    assert dom.count('<line class="decision"') == 5
    assert 'class="band"' in dom
    assert ">Fail</span>" in dom
