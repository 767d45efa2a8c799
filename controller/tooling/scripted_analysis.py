"""Analysis verdicts scripted in a ConfigMap: the test rig's analysis backend, never the product's.

Real releases use the judge on Prometheus data (`prometheus_analysis.py`). This backend lets the
tests and benchmarks exercise every analysis path exactly and fast: a ConfigMap
`modelrelease-analysis-script` in the release's namespace maps a run name, a model version, or
`default` to `Pass`, `Fail` or `Inconclusive`. Without an entry a run stays Running, so the
engine ends it INCONCLUSIVE at maxDuration: never a silent pass.

No flag of `modelrelease run` selects it, and controller.tooling is not in the wheel: only
`python -m controller.tooling.scripted_controller` in a checkout runs a controller with it.
"""

from __future__ import annotations

from collections.abc import Sequence

from analysis import verdicts
from controller import errors, ports
from controller.adapters import kubeapi
from controller.adapters.no_analysis import build_running
from controller.domain import actions
from controller.runtime import settings

CONFIGMAP = "modelrelease-analysis-script"


class ScriptedAnalysis:
    def __init__(self, api: kubeapi.KubeApi) -> None:
        self._api = api

    def fetch_results(
        self, release: ports.ReleaseRef, runs: Sequence[actions.StartAnalysis]
    ) -> dict[str, verdicts.AnalysisSummary]:
        if not runs:
            return {}
        try:
            script = (
                self._api.get(kubeapi.build_path("v1", "configmaps", release.namespace, CONFIGMAP)).get(
                    "data"
                )
                or {}
            )
        except errors.NotFoundError:
            script = {}
        results = build_running(runs)
        for run in runs:
            for key in (run.run, run.canary_model_version, "default"):
                if key and key in script:
                    verdict = verdicts.Verdict(script[key])
                    rule = f"scripted: ConfigMap {CONFIGMAP} entry {key!r} says {verdict.value}"
                    results[run.run] = verdicts.AnalysisSummary(verdict=verdict, rule=rule)
                    break
        return results

    def apply_start(self, release: ports.ReleaseRef, action: actions.StartAnalysis) -> None:
        """Nothing to start: the run is recorded in status and read on every reconcile."""

    def apply_stop(self, release: ports.ReleaseRef, action: actions.StopAnalysis) -> None:
        """Nothing runs between reconciles, so nothing to stop."""


def scripted(config: settings.RuntimeSettings, api: kubeapi.KubeApi) -> ports.AnalysisBackend:
    """An `operator.AnalysisFactory`: verdicts from the ConfigMap, whatever `--analysis` says."""
    return ScriptedAnalysis(api)
