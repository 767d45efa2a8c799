"""`modelrelease plan`: each release's steps, replicas and GPUs, as text or as a PR comment.

A reviewer reads from it what merging will do: how many replicas of each arm run at each step,
how many GPUs that takes against the budget (or why the budget refuses the plan), and how long
the rollout takes at least.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from analysis import power, schema, specs
from controller import manifests, releasetree
from controller.adapters.git import touched
from controller.domain import planning
from controller.resources import kinds, modelrelease

MARKDOWN_MARKER = "<!-- modelrelease-plan -->"  # lets a CI step find and update its own comment


@dataclass(frozen=True)
class Options:
    stable_replicas: int | None = None
    stable_gpus: int | None = None
    expected_rps: float | None = None
    expected_error_rate: float = 0.005


@dataclass(frozen=True)
class ReleasePlan:
    manifest: manifests.Manifest
    release: kinds.ModelRelease
    stable: planning.StableFootprint
    plan: planning.RolloutPlan | planning.Refusal
    estimates: tuple[str, ...]
    why: str = ""  # why a `--base` plan includes it
    before: kinds.ModelRelease | None = None  # what the base has (the stable it starts from)
    autoscaler: releasetree.Autoscaler | None = None  # what sizes it, when the files hold one
    at_maximum: planning.RolloutPlan | planning.Refusal | None = None  # the plan at its maxReplicas
    template_note: str = ""  # where the pod template (and its GPUs) came from, for a workloadRef

    @property
    def refused(self) -> bool:
        return isinstance(self.plan, planning.Refusal)


def build(
    loaded: Sequence[touched.Change],
    templates: dict[str, specs.AnalysisTemplateSpec],
    options: Options,
    tree: releasetree.Tree | None = None,
) -> list[ReleasePlan]:
    """A plan per release. The stable it starts from is what the base runs (a `--base` change), as
    the controller will size it — not the new spec's replicas; the options override both. With the
    files read (`tree`): a workloadRef's Deployment supplies the pod template, and an autoscaler that
    targets the release gets a second plan at its maximum, where the GPU peak is."""
    plans = []
    for change in loaded:
        manifest = change.manifest
        release = manifest.resource
        if not isinstance(release, kinds.ModelRelease):
            continue
        spec, note = _adopted(release.spec, tree, manifest)
        scaler = releasetree.autoscaler_of(tree, manifest) if tree is not None else None
        if scaler is not None:  # the autoscaler sizes it: planned at its minimum, and at its maximum below
            spec = _sized(spec, max(1, scaler.minimum))
        release = release.model_copy(update={"spec": spec})
        running = change.before.spec if change.before is not None and scaler is None else spec
        stable = planning.StableFootprint(
            replicas=options.stable_replicas or running.serving.replicas,
            gpus_per_replica=options.stable_gpus
            if options.stable_gpus is not None
            else running.gpus_per_replica,
        )
        plan = planning.plan_rollout(spec, stable)
        estimates: tuple[str, ...] = ()
        if isinstance(plan, planning.RolloutPlan) and options.expected_rps is not None:
            estimates = tuple(
                step_lengths(plan, templates, options.expected_rps, options.expected_error_rate)
            )
        at_maximum = None
        if scaler is not None:
            biggest = _sized(spec, scaler.maximum)
            footprint = planning.StableFootprint(scaler.maximum, stable.gpus_per_replica)
            at_maximum = planning.plan_rollout(biggest, footprint)
        plans.append(
            ReleasePlan(
                manifest,
                release,
                stable,
                plan,
                estimates,
                change.why,
                change.before,
                scaler,
                at_maximum,
                note,
            )
        )
    return plans


def _sized(spec: modelrelease.ModelReleaseSpec, replicas: int) -> modelrelease.ModelReleaseSpec:
    """The spec at another size, as `/scale` would set it (the template, adopted or not, kept)."""
    return spec.model_copy(update={"serving": spec.serving.model_copy(update={"replicas": replicas})})


def _adopted(
    spec: modelrelease.ModelReleaseSpec, tree: releasetree.Tree | None, manifest: manifests.Manifest
) -> tuple[modelrelease.ModelReleaseSpec, str]:
    """The spec with its workloadRef's pod template read in from the files, and a line saying so."""
    ref = spec.serving.workload_ref
    if ref is None:
        return spec, ""
    found = releasetree.referenced_deployment(tree, manifest) if tree is not None else None
    if found is None:
        return spec, f"pod template: Deployment {ref.name} (not among the files: GPUs per replica unknown, 0)"
    deployment = found.document.get("spec") or {}
    serving = spec.serving.adopting(deployment.get("template") or {}, int(deployment.get("replicas", 1)))
    return (
        spec.model_copy(update={"serving": serving}),
        f"pod template: Deployment {ref.name} ({found.source}:{found.line})",
    )


def _autoscaled_line(item: ReleasePlan) -> str:
    scaler, plan = item.autoscaler, item.at_maximum
    if scaler is None or plan is None:
        return ""
    said = f"sized by {scaler.kind} {scaler.name} ({scaler.minimum}–{scaler.maximum} replicas)"
    if isinstance(plan, planning.Refusal):
        return (
            f"{said}; at {scaler.maximum} it does not fit: {plan.message}. A rollout resized that far "
            "waits at that step until the size or the budget allows it"
        )
    return f"{said}; at {scaler.maximum}: peak GPUs {plan.peak_gpus}, budget {plan.budget_gpus}: fits"


def describe_change(item: ReleasePlan) -> str:
    """From → to, as a reviewer reads it: model, replicas and steps; 'new' without a base release."""
    now = item.release.spec
    if item.before is None:
        return f"new: {_pin(now.model)}, {now.serving.replicas} replicas, {_steps(now)}"
    was = item.before.spec

    def delta(label: str, old: str, new: str) -> str:
        return f"{label} {old} → {new}" if old != new else f"{label} {new} (unchanged)"

    return "; ".join(
        (
            delta("model", _pin(was.model), _pin(now.model)),
            delta("replicas", str(was.serving.replicas), str(now.serving.replicas)),
            delta("steps", _steps(was), _steps(now)) if _steps(was) != _steps(now) else "steps unchanged",
        )
    )


def _pin(model: modelrelease.ModelRef) -> str:
    return f"version {model.version}" if model.version is not None else f"alias {model.alias}"


def _steps(spec: modelrelease.ModelReleaseSpec) -> str:
    canary = spec.strategy.canary
    if canary is None:
        return "blue-green"
    return "[" + ", ".join(_step(step) for step in canary.steps) + "]"


def _step(step: modelrelease.CanaryStep) -> str:
    described = step.model_dump(by_alias=True, exclude_none=True, mode="json")
    return " ".join(
        f"{key} {value}" if not isinstance(value, dict) else key for key, value in described.items()
    )


def minimum_duration(release: kinds.ModelRelease, plan: planning.RolloutPlan) -> tuple[timedelta, str]:
    """The least time the rollout takes: timed pauses, warm-ups of new canary pods and the scale-down
    delay; and in words what comes on top (analyses until they pass, approvals, open pauses)."""
    spec = release.spec
    total = timedelta(0)
    on_top = []
    canary_before = 0
    analysis_limit = timedelta(0)
    for step in (*plan.steps, plan.promotion):
        if step.canary_replicas > canary_before:
            total += spec.serving.warmup
        canary_before = max(canary_before, step.canary_replicas)
        if step.pause is not None:
            total += step.pause
        elif step.kind == planning.StepKind.PAUSE:
            on_top.append(f"{step.label} waits to be promoted")
        if step.analysis is not None:
            analysis_limit += step.analysis.max_duration
        if step.kind == planning.StepKind.APPROVAL:
            on_top.append(f"{step.label} waits for an approval")
    strategy = spec.strategy.canary or spec.strategy.blue_green
    assert strategy is not None
    total += strategy.scale_down_delay
    if analysis_limit:
        on_top.insert(0, f"analyses until they pass (up to {schema.format_duration(analysis_limit)})")
    return total, "; ".join(on_top)


def _gpus(plan_step: planning.PlannedStep, canary_gpus: int, stable: planning.StableFootprint) -> int:
    return plan_step.canary_replicas * canary_gpus + plan_step.stable_replicas * stable.gpus_per_replica


def _budget_line(item: ReleasePlan, plan: planning.RolloutPlan) -> str:
    spec = item.release.spec
    stable_gpus = item.stable.replicas * item.stable.gpus_per_replica
    extra = plan.peak_gpus - stable_gpus
    if spec.gpu_budget is None:
        return f"peak GPUs {plan.peak_gpus} = stable {stable_gpus} + {extra} extra; no budget set"
    allowed = spec.gpu_budget.max_extra_gpus
    return (
        f"peak GPUs {plan.peak_gpus} = stable {stable_gpus} + {extra} extra; "
        f"budget {stable_gpus} + maxExtraGPUs {allowed} = {plan.budget_gpus}: fits"
    )


def _rows(item: ReleasePlan, plan: planning.RolloutPlan) -> list[tuple[str, str, str, str, str]]:
    gpus = item.release.spec.gpus_per_replica
    return [
        (
            step.label,
            step.describe_traffic(),
            str(step.canary_replicas),
            str(step.stable_replicas),
            str(_gpus(step, gpus, item.stable)),
        )
        for step in (*plan.steps, plan.promotion)
    ]


HEADERS = ("step", "weight", "canary", "stable", "GPUs")


def _title(item: ReleasePlan) -> str:
    release = item.release
    model = release.spec.model
    pinned = f"version {model.version}" if model.version is not None else f"alias {model.alias}"
    strategy = "canary" if release.spec.strategy.canary is not None else "blue-green"
    return f"ModelRelease {release.metadata.name} ({model.name} {pinned}, {strategy})"


def render_text(plans: Sequence[ReleasePlan]) -> str:
    lines: list[str] = []
    for item in plans:
        lines.append(f"{item.manifest.source}: {_title(item)}")
        if item.why:
            lines.append(f"  included: {item.why}; {describe_change(item)}")
        plan = item.plan
        if isinstance(plan, planning.Refusal):
            lines.append(f"  refused ({plan.reason}): {plan.message}")
            continue
        rows = _rows(item, plan)
        wide = max(40, *(len(row[0]) for row in rows))
        weights = max(6, *(len(row[1]) for row in rows))
        for label, weight, canary, stable, gpus in (HEADERS, *rows):
            lines.append(f"  {label:<{wide}} {weight:>{weights}} {canary:>6} {stable:>6} {gpus:>5}")
        lines.append(f"  {_budget_line(item, plan)}")
        lines.extend(f"  {line}" for line in (_autoscaled_line(item), item.template_note) if line)
        least, on_top = minimum_duration(item.release, plan)
        lines.append(f"  takes at least {schema.format_duration(least) if least else '0s'}" + _plus(on_top))
        lines.extend(f"  {line}" for line in item.estimates)
    return "\n".join(lines)


def render_markdown(
    plans: Sequence[ReleasePlan], *, against: str | None, problems: Sequence[manifests.Problem] = ()
) -> str:
    """The PR comment: every release the change touches with why and from → to, and every invalid
    file it touches — an invalid release is never left out of the count a reviewer reads."""
    scope = f"changed against `{against}`" if against else "in the repository"
    lines = [MARKDOWN_MARKER, "## modelrelease plan", ""]
    bad_files = sorted({p.source for p in problems})
    count = f"{len(plans)} release{'s' if len(plans) != 1 else ''} {scope}"
    if bad_files:
        count += f"; **{len(bad_files)} invalid file{'s' if len(bad_files) != 1 else ''}** (not planned)"
    lines.append(f"{count}." if plans or bad_files else f"No ModelRelease {scope}.")
    if bad_files:
        lines += ["", "### Invalid manifests", ""]
        lines += [f"- `{_escape(str(problem))}`" for problem in problems]
    for item in plans:
        lines += ["", f"### {_title(item)}", "", f"`{item.manifest.source}`", ""]
        if item.why:
            lines += [f"Included: {item.why}. From → to: {_escape(describe_change(item))}.", ""]
        plan = item.plan
        if isinstance(plan, planning.Refusal):
            lines.append(f"**Refused ({plan.reason}):** {_escape(plan.message)}")
            continue
        lines.append("| " + " | ".join(HEADERS) + " |")
        lines.append("|" + "---|" * len(HEADERS))
        lines += ["| " + " | ".join(_escape(cell) for cell in row) + " |" for row in _rows(item, plan)]
        least, on_top = minimum_duration(item.release, plan)
        lines += [
            "",
            f"- {_budget_line(item, plan)}",
            *(f"- {_escape(line)}" for line in (_autoscaled_line(item), item.template_note) if line),
            f"- takes at least {schema.format_duration(least) if least else '0s'}" + _plus(on_top),
        ]
        lines += [f"- {_escape(line)}" for line in item.estimates]
    return "\n".join(lines)


def _plus(on_top: str) -> str:
    return f", plus {on_top}" if on_top else ""


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def step_lengths(
    plan: planning.RolloutPlan,
    templates: dict[str, specs.AnalysisTemplateSpec],
    rps: float,
    error_rate: float,
) -> list[str]:
    """Per analysis step: how long a canary that behaves like its baseline should take to pass."""
    lines = []
    previous_weight = 0
    for step in plan.steps:
        if step.analysis is not None:
            name = step.analysis.template
            template = templates.get(name)
            limit = schema.format_duration(step.analysis.max_duration)
            if template is None:
                lines.append(f"{step.label}: AnalysisTemplate {name} is not among the files; no estimate")
            elif previous_weight <= 0 or previous_weight >= 100:
                lines.append(f"{step.label}: no canary traffic share to estimate from ({previous_weight}%)")
            else:
                expected = power.estimate_step(
                    template,
                    requests_per_second=rps,
                    canary_share=previous_weight / 100,
                    error_rate=error_rate,
                )
                limiting = expected.limiting
                slowest = "" if limiting is None else f", {limiting.name} decides"
                if limiting is not None and limiting.canary_requests is not None:
                    slowest += f" after ~{limiting.canary_requests:,.0f} canary requests"
                beyond = ""
                if expected.horizon_duration > step.analysis.max_duration:
                    beyond = " (beyond maxDuration: expect Inconclusive)"
                elif expected.duration > step.analysis.max_duration:
                    beyond = (
                        " (no early pass expected: at maxDuration the fixed-horizon test passes a "
                        f"typical good canary, which needs ~{_minutes(expected.horizon_duration)})"
                    )
                lines.append(
                    f"{step.label}: expected ~{schema.format_duration(_whole_minutes(expected.duration))} "
                    f"to pass at {rps:g} requests/s and {previous_weight}% canary{slowest}; "
                    f"maxDuration {limit}{beyond}"
                )
        previous_weight = step.weight
    return lines


def _minutes(duration: timedelta) -> str:
    return schema.format_duration(_whole_minutes(duration))


def _whole_minutes(duration: timedelta) -> timedelta:
    return timedelta(minutes=max(1, math.ceil(duration.total_seconds() / 60)))
