"""A finished rollout as an MLflow run: the judge's verdicts as metrics, its judgement as JSON.

One run per rollout in the experiment `modelrelease`, found again by the tag `modelrelease.key`
(the owed write's idempotency key), so a controller killed half-way through logging finishes the
same run instead of starting a second one: metrics carry fixed steps and timestamps (MLflow drops
exact repeats), the artifact is overwritten, and the run is ended last — a run counts as logged
only once it is FINISHED.
"""

from __future__ import annotations

import json
import pathlib
import re
import time
from datetime import datetime
from urllib.parse import urlparse

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, Run

from analysis import verdicts
from controller.resources import releasestatus

EXPERIMENT = "modelrelease"
KEY_TAG = "modelrelease.key"
JUDGEMENT = "judgement.json"
# A verdict as a number, so a chart of `verdict` over steps reads up for pass and down for fail.
VERDICT_VALUE = {
    verdicts.Verdict.PASS: 1.0,
    verdicts.Verdict.INCONCLUSIVE: 0.0,
    verdicts.Verdict.FAIL: -1.0,
}
_UNSAFE = re.compile(r"[^A-Za-z0-9_\-. :/]")


def find_run(client: MlflowClient, key: str) -> Run | None:
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        return None
    found = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`{KEY_TAG}` = '{key}'", max_results=1
    )
    return found[0] if found else None


def is_finished(run: Run) -> bool:
    return str(run.info.status) == "FINISHED"


def link(tracking_uri: str, run: Run) -> str:
    """Where a person sees the run: the MLflow UI for a server, a runs:/ URI for a local store."""
    if urlparse(tracking_uri).scheme in ("http", "https"):
        return f"{tracking_uri.rstrip('/')}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
    return f"runs:/{run.info.run_id}"


def log_rollout(client: MlflowClient, tracking_uri: str, key: str, rollout: releasestatus.RolloutRun) -> Run:
    """Log (or finish logging) the rollout's run; returns it, FINISHED."""
    run = find_run(client, key) or start_run(client, tracking_uri, key, rollout)
    run_id = run.info.run_id
    if not is_finished(run):
        client.log_batch(run_id, metrics=_metrics(rollout), params=_params(rollout))
        client.log_text(run_id, judgement(rollout), JUDGEMENT)
        client.set_terminated(run_id, "FINISHED", end_time=_ms(rollout.record.ended_at))
    return client.get_run(run_id)


def judgement(rollout: releasestatus.RolloutRun) -> str:
    """The artifact: how the rollout ended and every analysis with the judge's per-metric evidence."""
    return json.dumps(rollout.model_dump(mode="json", by_alias=True, exclude_none=True), indent=2)


def start_run(client: MlflowClient, tracking_uri: str, key: str, rollout: releasestatus.RolloutRun) -> Run:
    """Open the rollout's run, tagged with its key so it is found again (it counts once FINISHED)."""
    record = rollout.record
    return client.create_run(
        _experiment(client, tracking_uri),
        start_time=_ms(record.started_at or record.ended_at),
        tags={
            KEY_TAG: key,
            "mlflow.runName": f"{rollout.release} model {record.model_version} ({record.revision})",
            "modelrelease.release": rollout.release,
            "modelrelease.outcome": record.outcome.value,
            "modelrelease.reason": record.reason,
        },
    )


def _experiment(client: MlflowClient, tracking_uri: str) -> str:
    found = client.get_experiment_by_name(EXPERIMENT)
    if found is not None:
        return str(found.experiment_id)
    # A local store would put artifacts under the working directory; keep them beside the store.
    location = None
    if tracking_uri.startswith("sqlite:///"):
        location = (pathlib.Path(tracking_uri.removeprefix("sqlite:///")).parent / "artifacts").as_uri()
    return str(client.create_experiment(EXPERIMENT, artifact_location=location))


def _params(rollout: releasestatus.RolloutRun) -> list[Param]:
    record = rollout.record
    values = {
        "revision": record.revision,
        "attempt": str(record.attempt),
        "model_version": record.model_version or "",
        "from_model_version": record.from_model_version or "",
    }
    return [Param(key, value) for key, value in values.items()]


def _metrics(rollout: releasestatus.RolloutRun) -> list[Metric]:
    """Per analysis with a verdict: `verdict`, and per metric its evidence, effect and arm values,
    at the step the analysis belongs to (the background analysis under `background/`)."""
    logged: list[Metric] = []
    for run in rollout.analysis:
        if run.verdict not in VERDICT_VALUE:
            continue
        prefix = "background/" if run.step_index == releasestatus.BACKGROUND_STEP else ""
        step = max(run.step_index, 0)
        at = _ms(run.finished_at or rollout.record.ended_at)
        logged.append(Metric(f"{prefix}verdict", VERDICT_VALUE[run.verdict], at, step))
        for metric in run.metrics:
            name = _UNSAFE.sub("_", metric.name)
            values = {
                "verdict": VERDICT_VALUE.get(metric.verdict),
                "evidence": metric.evidence,
                "effect": metric.effect,
                "canary": metric.canary,
                "stable": metric.baseline,
            }
            logged.extend(
                Metric(f"{prefix}{name}/{what}", value, at, step)
                for what, value in values.items()
                if value is not None
            )
    return logged


def _ms(moment: datetime | None) -> int:
    return int((moment.timestamp() if moment is not None else time.time()) * 1000)
