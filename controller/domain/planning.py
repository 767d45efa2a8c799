"""Replica plans under the GPU budget, for canary and blue-green alike.

Both strategies compile to one list of `PlannedStep`s, each saying how many canary (or
preview) and stable replicas run while the step is in force and what traffic weight it
sets. The machine walks that list; it never sizes workloads itself. A plan that cannot
fit the budget is refused here, before anything starts, with the reason.

Budget arithmetic: B = stable replicas × stable GPUs/replica + maxExtraGPUs. Every planned
state must satisfy canary×g_c + stable×g_s ≤ B, and the engine shrinks before it grows, so
every intermediate state lies between two planned ones and fits as well. Stable keeps as
many replicas as the budget leaves (the headroom to take all traffic back on abort), but
never fewer than its share of traffic needs while the step is being entered.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from controller.resources import modelrelease, releasestatus


class StepKind(StrEnum):
    WEIGHT = "setWeight"
    PAUSE = "pause"
    ANALYSIS = "analysis"
    APPROVAL = "approval"
    SHADOW = "shadow"
    HEADER_ROUTE = "setHeaderRoute"


@dataclass(frozen=True)
class PlannedStep:
    kind: StepKind
    label: str
    canary_replicas: int
    stable_replicas: int
    weight: int  # canary traffic share once this step is complete
    pause: timedelta | None = None
    analysis: modelrelease.AnalysisStep | None = None  # a shadow's too
    approval: modelrelease.ApprovalStep | None = None
    mirror: int = 0  # percent of the stable's requests copied to the canary while in this step
    header_route: modelrelease.SetHeaderRoute | None = None  # in force while in this step
    # Why this step does not fit the budget at the size now (a step ahead of a resized rollout: the
    # rollout waits before entering it); its replicas are then the step before's.
    does_not_fit: str | None = None

    def describe_traffic(self) -> str:
        """The canary's users (the weight), plus what else reaches it: mirrored copies, a cohort."""
        said = f"{self.weight}%"
        if self.mirror:
            said += f" + {self.mirror}% mirrored"
        if self.header_route is not None:
            said += " + header cohort"
        return said


@dataclass(frozen=True)
class StableFootprint:
    replicas: int
    gpus_per_replica: int


@dataclass(frozen=True)
class RolloutPlan:
    steps: tuple[PlannedStep, ...]
    promotion: PlannedStep
    budget_gpus: int | None
    peak_gpus: int


@dataclass(frozen=True)
class Refusal:
    reason: str
    message: str


def plan_against_status(
    spec: modelrelease.ModelReleaseSpec, status: releasestatus.ModelReleaseStatus
) -> RolloutPlan | Refusal:
    """The plan at the release's size now (`spec.serving.replicas`, which `/scale` sets: an HPA, `kubectl
    scale`), with the stable's GPUs per replica as the status records them.

    Re-planned on every look, so a resize mid-rollout keeps each step's split of the new size and
    the budget (stable × GPUs + maxExtraGPUs) follows the size too."""
    stable = StableFootprint(
        replicas=spec.serving.replicas,
        gpus_per_replica=status.stable_gpus_per_replica if status.stable_revision else spec.gpus_per_replica,
    )
    current = status.current_step_index if status.canary_revision is not None else None
    return plan_rollout(spec, stable, current=current)


def plan_rollout(
    spec: modelrelease.ModelReleaseSpec, stable: StableFootprint, *, current: int | None = None
) -> RolloutPlan | Refusal:
    """Every step sized under the budget, or the first that cannot be. With `current` (a rollout under
    way, at that step) a step that does not fit is planned with the reason (`does_not_fit`) instead:
    a resize may leave a step too large for now, and the rollout waits at it until it fits."""
    sizer = _Sizer(
        canary_full=spec.serving.replicas,
        canary_gpus=spec.gpus_per_replica,
        stable=stable,
        budget=(
            stable.replicas * stable.gpus_per_replica + spec.gpu_budget.max_extra_gpus
            if spec.gpu_budget
            else None
        ),
        extra=spec.gpu_budget.max_extra_gpus if spec.gpu_budget else None,
        by_replicas=spec.traffic_routing.by_replicas,
        current=current,
    )
    try:
        if spec.strategy.canary is not None:
            steps, promotion = _plan_canary(spec.strategy.canary, sizer)
        else:
            assert spec.strategy.blue_green is not None
            steps, promotion = _plan_blue_green(spec.strategy.blue_green, sizer, spec.notifications)
    except _DoesNotFitError as error:
        return Refusal("GPUBudgetExceeded", str(error))
    peak = max(sizer.gpus(s) for s in (*steps, promotion))
    return RolloutPlan(steps=steps, promotion=promotion, budget_gpus=sizer.budget, peak_gpus=peak)


class _DoesNotFitError(Exception):
    pass


@dataclass(frozen=True)
class _Sizer:
    canary_full: int
    canary_gpus: int
    stable: StableFootprint
    budget: int | None
    extra: int | None
    by_replicas: bool
    current: int | None = None

    def fitted(
        self, label: str, weight_before: int, weight: int, before: tuple[int, int]
    ) -> tuple[tuple[int, int], str | None]:
        """The step's (canary, stable) replicas; in a rollout under way, for a step that does not fit,
        the step before's and the reason it does not (the machine waits before it)."""
        try:
            return self.canary_step(label, weight_before, weight), None
        except _DoesNotFitError as error:
            if self.current is None:
                raise
            return before, str(error)

    def gpus(self, step: PlannedStep) -> int:
        return self.gpus_for(step.canary_replicas, step.stable_replicas)

    def gpus_for(self, canary: int, stable: int) -> int:
        return canary * self.canary_gpus + stable * self.stable.gpus_per_replica

    def _budget_text(self) -> str:
        return (
            f"the budget is {self.budget} GPUs (stable {self.stable.replicas}×{self.stable.gpus_per_replica}"
            f" + maxExtraGPUs {self.extra})"
        )

    def _stable_room(self, canary: int) -> int:
        """Most stable replicas that fit beside `canary` canary replicas."""
        if self.budget is None or self.stable.gpus_per_replica == 0:
            if self.budget is not None and canary * self.canary_gpus > self.budget:
                return -1
            return self.stable.replicas
        return min(
            self.stable.replicas, (self.budget - canary * self.canary_gpus) // self.stable.gpus_per_replica
        )

    def canary_step(self, label: str, weight_before: int, weight: int) -> tuple[int, int]:
        canary = max(1, math.ceil(self.canary_full * weight / 100))
        room = self._stable_room(canary)
        if self.by_replicas and weight < 100:
            # The share follows the replica ratio, so stable must keep its part of the ratio.
            wanted = max(1, self.stable.replicas - math.floor(self.stable.replicas * weight / 100))
            if room < wanted:
                raise _DoesNotFitError(
                    f"{label}: {canary} canary and {wanted} stable replicas make the ~{weight}% "
                    f"replica ratio and need {self.gpus_for(canary, wanted)} GPUs; "
                    f"{self._budget_text()}. Raise maxExtraGPUs or use a traffic router"
                )
            return canary, wanted
        share = 100 - min(weight_before, weight)
        needed = math.ceil(self.stable.replicas * share / 100)
        if room < needed:
            raise _DoesNotFitError(
                f"{label}: the canary needs {canary}×{self.canary_gpus} GPUs while stable still serves "
                f"{share}% and must keep {needed} of {self.stable.replicas} replicas; {self._budget_text()}. "
                f"Add a smaller setWeight step before it or raise maxExtraGPUs"
            )
        return canary, room

    def stable_beside_preview(self, label: str, replicas: int) -> int:
        """Blue-green keeps the whole stable beside `replicas` new ones: the stable count, if that fits."""
        if self.budget is not None:
            total = self.gpus_for(replicas, self.stable.replicas)
            if total > self.budget:
                raise _DoesNotFitError(
                    f"{label}: blue-green runs {replicas} new replicas "
                    f"({replicas * self.canary_gpus} GPUs) beside the whole stable, {total} GPUs in all; "
                    f"{self._budget_text()}. "
                    f"Raise maxExtraGPUs to {replicas * self.canary_gpus} or use a canary strategy"
                )
        return self.stable.replicas


def _plan_canary(
    strategy: modelrelease.CanaryStrategy, sizer: _Sizer
) -> tuple[tuple[PlannedStep, ...], PlannedStep]:
    steps: list[PlannedStep] = []
    weight = 0
    header: modelrelease.SetHeaderRoute | None = None  # a header route holds until a setWeight
    misfit: str | None = None  # why the sizes in force (the last setWeight's) do not fit now
    canary, stable = sizer.canary_step("rollout start", 0, 0)
    for index, step in enumerate(strategy.steps):
        label = f"step {index} ({step.describe()})"
        if step.set_weight is not None:
            (canary, stable), misfit = sizer.fitted(label, weight, step.set_weight, (canary, stable))
            weight, header = step.set_weight, None
            steps.append(PlannedStep(StepKind.WEIGHT, label, canary, stable, weight, does_not_fit=misfit))
        elif step.shadow is not None:
            # The canary takes `percent` of the stable's load on top of no user traffic: sized like a
            # canary at that share, beside a stable that still serves everyone.
            (mirrored, beside), too_big = sizer.fitted(label, 0, step.shadow.percent, (canary, stable))
            steps.append(
                PlannedStep(
                    StepKind.SHADOW,
                    label,
                    mirrored,
                    beside,
                    weight,
                    analysis=step.shadow.analysis,
                    mirror=step.shadow.percent,
                    header_route=header,
                    does_not_fit=too_big,
                )
            )
        elif step.set_header_route is not None:
            header = step.set_header_route
            steps.append(
                PlannedStep(
                    StepKind.HEADER_ROUTE,
                    label,
                    canary,
                    stable,
                    weight,
                    header_route=header,
                    does_not_fit=misfit,
                )
            )
        elif step.pause is not None:
            steps.append(
                PlannedStep(
                    StepKind.PAUSE,
                    label,
                    canary,
                    stable,
                    weight,
                    pause=step.pause.duration,
                    header_route=header,
                    does_not_fit=misfit,
                )
            )
        elif step.analysis is not None:
            steps.append(
                PlannedStep(
                    StepKind.ANALYSIS,
                    label,
                    canary,
                    stable,
                    weight,
                    analysis=step.analysis,
                    header_route=header,
                    does_not_fit=misfit,
                )
            )
        else:
            steps.append(
                PlannedStep(
                    StepKind.APPROVAL,
                    label,
                    canary,
                    stable,
                    weight,
                    approval=step.approval,
                    header_route=header,
                    does_not_fit=misfit,
                )
            )
    (canary, stable), too_big = sizer.fitted("promotion", weight, 100, (canary, stable))
    return tuple(steps), PlannedStep(StepKind.WEIGHT, "promotion", canary, stable, 100, does_not_fit=too_big)


def _plan_blue_green(
    strategy: modelrelease.BlueGreenStrategy, sizer: _Sizer, notifications: modelrelease.Notifications
) -> tuple[tuple[PlannedStep, ...], PlannedStep]:
    """Blue-green as steps: preview up (no traffic), pre-promotion analysis, the promotion gate,
    the switch (all traffic to the new version, old kept whole), post-promotion analysis."""
    full = sizer.canary_full
    preview = strategy.preview_replicas or full
    stable = sizer.stable_beside_preview("preview", preview)
    steps = [PlannedStep(StepKind.WEIGHT, "preview", preview, stable, 0)]
    if strategy.pre_promotion_analysis is not None:
        steps.append(
            PlannedStep(
                StepKind.ANALYSIS,
                "pre-promotion analysis",
                preview,
                stable,
                0,
                analysis=strategy.pre_promotion_analysis,
            )
        )
    if not strategy.auto_promote:
        gate = modelrelease.ApprovalStep(slack=notifications.slack is not None)
        steps.append(PlannedStep(StepKind.APPROVAL, "promotion gate", preview, stable, 0, approval=gate))
    stable = sizer.stable_beside_preview("switch", full)
    steps.append(PlannedStep(StepKind.WEIGHT, "switch", full, stable, 100))
    if strategy.post_promotion_analysis is not None:
        steps.append(
            PlannedStep(
                StepKind.ANALYSIS,
                "post-promotion analysis",
                full,
                stable,
                100,
                analysis=strategy.post_promotion_analysis,
            )
        )
    return tuple(steps), PlannedStep(StepKind.WEIGHT, "promotion", full, stable, 100)
