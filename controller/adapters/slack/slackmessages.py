"""What modelrelease says in Slack, as Block Kit: pure functions of the release and the notification.

One parent message per rollout, rendered from status every time it is looked at (so `chat.update`
keeps it current and a restarted controller renders the same thing); thread replies rendered once,
when the notification is queued. Every message has a plain `text` fallback, as Slack asks, for
notifications and screen readers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from analysis import verdicts
from controller.adapters.slack import slackpress
from controller.domain import actions
from controller.resources import modelrelease, releasestatus

Blocks = list[dict[str, Any]]

PHASE_ICON = {
    releasestatus.Phase.SUCCEEDED: ":white_check_mark:",
    releasestatus.Phase.ROLLED_BACK: ":leftwards_arrow_with_hook:",
    releasestatus.Phase.FAILED: ":x:",
    releasestatus.Phase.BLOCKED: ":no_entry:",
    releasestatus.Phase.AWAITING_APPROVAL: ":raised_hand:",
    releasestatus.Phase.PAUSED: ":double_vertical_bar:",
}
REPLY_ICON = {
    actions.NotificationEvent.ANALYSIS: ":bar_chart:",
    actions.NotificationEvent.PAUSED: ":double_vertical_bar:",
    actions.NotificationEvent.PROMOTED: ":rocket:",
    actions.NotificationEvent.ROLLED_BACK: ":leftwards_arrow_with_hook:",
    actions.NotificationEvent.FAILED: ":x:",
    actions.NotificationEvent.APPROVAL: ":ballot_box_with_check:",
}
# The parent message says these; a reply would repeat it.
NOT_REPLIED = frozenset({actions.NotificationEvent.STARTED, actions.NotificationEvent.STEP_COMPLETED})


@dataclasses.dataclass(frozen=True)
class Rendered:
    text: str
    blocks: Blocks

    @property
    def digest(self) -> str:
        """Changes exactly when what Slack shows would change."""
        content = json.dumps([self.text, self.blocks], sort_keys=True)
        return hashlib.sha256(content.encode()).hexdigest()[:16]


def rollout_of(key: str) -> str:
    """The rollout (`revision.attempt`) a notification key belongs to."""
    return key.partition("/")[0]


def render_parent(
    namespace: str,
    name: str,
    spec: modelrelease.ModelReleaseSpec,
    status: releasestatus.ModelReleaseStatus,
    rollout: str,
) -> Rendered:
    """The rollout's parent message: models, strategy, step, weight and phase — or how it ended."""
    strategy = "blue-green" if spec.strategy.blue_green is not None else "canary"
    current = f"{status.revision}.{status.attempt}" == rollout
    ended = next(
        (r for r in reversed(status.history) if f"{r.revision}.{r.attempt}" == rollout),
        None,
    )
    if current and status.phase not in (releasestatus.Phase.SUCCEEDED, releasestatus.Phase.ROLLED_BACK):
        to_version = status.canary_model_version or status.stable_model_version or "?"
        from_version = status.stable_model_version if status.canary_model_version else None
        phase = status.phase.value
        where = _where(spec, status.current_step_index)
        weight = f"{status.canary_weight}%"
        detail = status.message
        icon = PHASE_ICON.get(status.phase, ":arrows_counterclockwise:")
    elif ended is not None:
        to_version, from_version = ended.model_version or "?", ended.from_model_version
        phase = ended.outcome.value
        where, weight = "done", "-"
        detail = f"{ended.reason}: {ended.message}" if ended.message else ended.reason
        icon = {
            releasestatus.RolloutOutcome.PROMOTED: PHASE_ICON[releasestatus.Phase.SUCCEEDED],
            releasestatus.RolloutOutcome.ROLLED_BACK: PHASE_ICON[releasestatus.Phase.ROLLED_BACK],
        }.get(ended.outcome, ":x:")
    else:
        to_version = status.stable_model_version or "?"
        from_version = None
        phase, where, weight, detail = status.phase.value, "done", "-", status.message
        icon = PHASE_ICON.get(status.phase, ":arrows_counterclockwise:")
    models = f"model {from_version} → {to_version}" if from_version else f"model {to_version}"
    title = f"{name}: {models}"
    blocks: Blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(title, 150)}},
        {
            "type": "section",
            "fields": [
                _field("Phase", f"{icon} {phase}"),
                _field("Strategy", strategy),
                _field("Step", where),
                _field("Canary weight", weight),
            ],
        },
    ]
    if detail:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _clip(detail, 2900)}})
    revision = rollout.rpartition(".")[0]
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"`{namespace}/{name}` · revision `{revision}` · "
                    f"`kubectl modelrelease status {name} -n {namespace}`",
                }
            ],
        }
    )
    return Rendered(f"{title}: {phase}, {where}, canary {weight}", blocks)


def render_notification(action: actions.Notify) -> Rendered | None:
    """A thread reply for a notification; None for those the parent message already shows."""
    if action.event in NOT_REPLIED:
        return None
    icon = REPLY_ICON.get(action.event, "")
    text = f"{icon} {action.message}".strip()
    blocks: Blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": _clip(text, 2900)}}]
    if action.metrics:
        table = "```\n" + render_metric_table(action.metrics) + "\n```"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _clip(table, 2900)}})
    return Rendered(text, blocks)


def render_metric_table(metrics: tuple[verdicts.MetricResult, ...]) -> str:
    """baseline, canary, effect with its confidence interval, evidence, and the decision, per metric."""
    rows = [("metric", "baseline", "canary", "effect [CI]", "evidence", "decision")]
    for m in metrics:
        effect = "-"
        if m.effect is not None:
            effect = _percent(m.effect)
            if m.ci_low is not None and m.ci_high is not None:
                effect += f" [{_percent(m.ci_low)}, {_percent(m.ci_high)}]"
        needed = f" / {1 / m.alpha:.3g}" if m.alpha else ""
        evidence = "-" if m.evidence is None else f"{m.evidence:.3g}{needed}"
        rows.append((m.name, _number(m.baseline), _number(m.canary), effect, evidence, m.verdict.value))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def render_approval_request(namespace: str, name: str, action: actions.RequestApproval) -> Rendered:
    """The gate's message, with Approve and Roll back buttons naming this revision and step."""
    value = slackpress.ButtonValue(namespace, name, action.revision, action.step_index).encode()
    text = (
        f":raised_hand: step {action.step_index} of model {action.model_version} (revision "
        f"{action.revision}) waits for approval"
    )
    blocks: Blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {
            "type": "actions",
            "block_id": "approval",
            "elements": [
                _button("approve", "Approve", value, "primary"),
                _button("reject", "Roll back", value, "danger"),
            ],
        },
    ]
    return Rendered(text, blocks)


def render_decided(request: Rendered, outcome: str) -> Rendered:
    """The approval request once decided: the buttons give way to who decided."""
    kept = [b for b in request.blocks if b.get("type") != "actions"]
    kept.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(outcome, 2900)}]})
    return Rendered(f"{request.text} — {outcome}", kept)


def _where(spec: modelrelease.ModelReleaseSpec, index: int | None) -> str:
    """The step as everything else names it (0-based, like Approval.step), with its kind."""
    steps = spec.strategy.canary.steps if spec.strategy.canary is not None else ()
    if index is None or not steps or index >= len(steps):
        return "-" if index is None else f"{index}"
    step = steps[index]
    kind = (
        f"setWeight {step.set_weight}"
        if step.set_weight is not None
        else "pause"
        if step.pause is not None
        else f"analysis {step.analysis.template}"
        if step.analysis is not None
        else "approval"
    )
    return f"{index} ({kind}) of 0–{len(steps) - 1}"


def render_vote(request: Rendered, vote: str) -> Rendered:
    """An approval request short of its quorum: who approved so far, above the buttons kept."""
    note = {"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(vote, 2900)}]}
    buttons = [b for b in request.blocks if b.get("type") == "actions"]
    kept = [b for b in request.blocks if b.get("type") != "actions"]
    return Rendered(f"{request.text} — {vote}", [*kept, note, *buttons])


def _button(action_id: str, label: str, value: str, style: str) -> dict[str, Any]:
    return {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": label},
        "value": value,
        "style": style,
    }


def _field(label: str, value: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": f"*{label}*\n{value}"}


def _percent(value: float) -> str:
    return f"{value:+.1%}"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
