"""`make demo` is a test too: the same code, asserting the two outcomes the judge must reach."""

from __future__ import annotations

import pathlib

from analysis import verdicts
from controller.resources import releasestatus
from controller.tooling import demo


def test_the_demo_promotes_model_2_and_rolls_back_model_3_on_the_judges_evidence(
    tmp_path: pathlib.Path,
) -> None:
    shown: list[str] = []
    with demo.running(tmp_path / "demo", out=shown.append, live=False) as running:
        outcomes, text, ok = demo.story(running)
    log = (tmp_path / "demo" / "controller.log").read_text()[-3000:]
    assert ok, f"{text}\n--- controller log ---\n{log}"
    promoted, rolled_back = (outcome.record for outcome in outcomes)
    assert promoted is not None
    assert promoted.outcome == releasestatus.RolloutOutcome.PROMOTED
    assert rolled_back is not None
    assert rolled_back.outcome == releasestatus.RolloutOutcome.ROLLED_BACK
    assert rolled_back.reason == "AnalysisFailed"
    failed = outcomes[1].status.last_rollback
    assert failed is not None
    assert any(m.evidence is not None and m.alpha and m.evidence >= 1 / m.alpha for m in failed.evidence)
    assert any("analysis inference-slo" in view or "analysis fraud-detector" in view for view in shown)
    # Proposed by the alias move, released through Git, and the rollback written back to it: the
    # file says model 2 again.
    assert [outcome.proposed for outcome in outcomes] == ["bump/fraud-detector-2", "bump/fraud-detector-3"]
    assert all(outcome.started_after is not None for outcome in outcomes)
    assert outcomes[1].written_back.splitlines()[3] == "Roll back fraud-detector to model version 2"
    assert "Modelrelease-Action: " in outcomes[1].written_back
    # Each began with a shadow: model 2 agreed with stable, model 3 was stopped there, before any user.
    shadows = [o.status.analysis[0] for o in outcomes]
    assert [(s.template, s.verdict) for s in shadows] == [
        ("shadow-slo", verdicts.Verdict.PASS),
        ("shadow-slo", verdicts.Verdict.FAIL),
    ]
    agreement = next(m for m in shadows[0].metrics if m.name == "agreement")
    assert agreement.canary is not None
    assert agreement.canary < 0.02
    # Followed in Slack, and approved there: one thread per rollout, ending with its outcome.
    assert outcomes[0].approved_in_slack == "ada (Slack U0ADA)"
    assert "approved by ada (Slack U0ADA)" in outcomes[0].slack_thread
    assert outcomes[0].slack_thread.splitlines()[-1].startswith("  ↳ :rocket:")
    assert "errors       0.0" in outcomes[1].slack_thread  # the verdict's metric table
    assert (
        outcomes[1].slack_thread.splitlines()[-1].startswith("  ↳ :leftwards_arrow_with_hook: AnalysisFailed")
    )
    # The registry tells the same story: production on model 2, model 3 tagged as rolled back.
    # The summary ends with explain, the verdict report's page and the controller's own metrics.
    # explain's paragraph is wrapped at 100 columns: read it with its line breaks as spaces.
    assert "fraud-detector is RolledBack (AnalysisFailed)" in " ".join(text.split()), text
    assert (tmp_path / "demo" / "report-fraud-detector.html").read_text().count('<svg class="plot"') >= 3
    assert "the judge decided Fail at look" in text, text
    assert "rollouts by outcome: Promoted 1, RolledBack 1" in text
    assert running.registry.alias("production") == "2"
    assert running.registry.tags("3")["modelrelease.rollout"] == "rolled_back"
    # Each rollout is an MLflow run, linked from its history entry.
    assert all(o.record is not None and (o.record.mlflow_run or "").startswith("runs:/") for o in outcomes)
    assert 'version: "2"   # the model to serve: a PR changes this line' in running.repo.show(
        demo.RELEASE_FILE
    )
