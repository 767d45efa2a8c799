"""The analysis backend of a controller run without `--analysis prometheus`.

Every run stays Running and the engine ends it INCONCLUSIVE at its maxDuration: a release can
never pass an analysis step that nothing judged.
"""

from __future__ import annotations

from collections.abc import Sequence

from analysis import verdicts
from controller import ports
from controller.domain import actions


class NoAnalysis:
    def fetch_results(
        self, release: ports.ReleaseRef, runs: Sequence[actions.StartAnalysis]
    ) -> dict[str, verdicts.AnalysisSummary]:
        return build_running(runs)

    def apply_start(self, release: ports.ReleaseRef, action: actions.StartAnalysis) -> None:
        """Nothing to start: the run is recorded in status and ends at its maxDuration."""

    def apply_stop(self, release: ports.ReleaseRef, action: actions.StopAnalysis) -> None:
        """Nothing runs, so nothing to stop."""


def build_running(runs: Sequence[actions.StartAnalysis]) -> dict[str, verdicts.AnalysisSummary]:
    """Every run known and still without a verdict (see `ports.AnalysisBackend`)."""
    return {run.run: verdicts.AnalysisSummary(verdict=verdicts.Verdict.RUNNING) for run in runs}
