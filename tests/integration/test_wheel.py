"""What a production install gets: the wheel, built from this checkout and installed into a clean venv,
has the product and nothing of the test rig — no emulated cluster, no fleet, no Slack stand-in, no
scripted verdicts — and its controller offers only the judge (or no analysis) as a verdict source."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PRODUCT = ("controller", "controller.cli.main", "controller.runtime.operator", "analysis.judge")
RIG = (
    "controller.sandbox",  # the emulated API server, retired
    "controller.tooling",  # the fleet, the Slack stand-in, the scripted verdicts, the demo
    "controller.tooling.fleet",
    "controller.tooling.slackstandin",
    "controller.tooling.scripted_analysis",
    "controller.adapters.scripted_analysis",  # where the scripted backend used to live
    "analysis.tooling",
    "tests",
)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A clean venv holding only the wheel; its dependencies are read from the test venv's
    site-packages (a .pth line), which holds no copy of the product: it is installed editable there,
    through a finder a .pth line does not run."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"  # a copy, so the build leaves nothing in the checkout
    for name in ("controller", "analysis"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", work, source],
        check=True,
        capture_output=True,
    )
    [wheel] = work.glob("modelrelease-*.whl")
    env = work / "venv"
    venv.create(env, with_pip=False)
    python = env / "bin" / "python"
    site = pathlib.Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    (site / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)  # what pip does with a pure-Python wheel, without its network
    entry = env / "bin" / "modelrelease"
    entry.write_text(f"#!{python}\nimport sys\nfrom controller.cli.main import main\nsys.exit(main())\n")
    entry.chmod(0o755)
    return env


def _python(env: pathlib.Path, code: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "MODELRELEASE_"))}
    return subprocess.run(
        [env / "bin" / "python", "-P", "-c", code],
        capture_output=True,
        text=True,
        cwd=env,
        env=clean,
        check=False,
        timeout=120,
    )


def _importable(env: pathlib.Path, module: str) -> bool:
    found = _python(env, f"import importlib.util as u, sys; sys.exit(0 if u.find_spec({module!r}) else 3)")
    assert found.returncode in (0, 1, 3), found.stderr
    return found.returncode == 0


def test_the_installed_wheel_has_the_product_and_nothing_of_the_test_rig(installed: pathlib.Path) -> None:
    where = _python(installed, "import controller; print(controller.__file__)")
    assert where.returncode == 0, where.stderr
    assert str(ROOT) not in where.stdout, f"the product came from the checkout: {where.stdout}"
    assert [m for m in PRODUCT if not _importable(installed, m)] == []
    assert [m for m in RIG if _importable(installed, m)] == []


def test_the_installed_controller_takes_verdicts_only_from_the_judge_or_none(installed: pathlib.Path) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MODELRELEASE_")}
    entry = installed / "bin" / "modelrelease"

    def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [entry, *args], capture_output=True, text=True, env={**clean, **env}, check=False, timeout=120
        )

    helped = run("run", "--help")
    assert helped.returncode == 0, helped.stderr
    assert "--analysis {none,prometheus}" in helped.stdout
    scripted = run("run", "--analysis", "scripted")
    assert scripted.returncode == 2
    assert "invalid choice: 'scripted'" in scripted.stderr
    from_environment = run("run", "--help", MODELRELEASE_ANALYSIS="scripted")
    assert from_environment.returncode == 2
    assert "MODELRELEASE_ANALYSIS" in from_environment.stderr
    sandbox = run("sandbox", "--kubeconfig", "k")
    assert sandbox.returncode == 2
    assert "invalid choice: 'sandbox'" in sandbox.stderr
