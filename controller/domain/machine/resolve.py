"""The model the spec names, resolved and pinned; and what happens while it cannot be.

The version is pinned in `status.resolvedModel` for as long as `spec.model` is unchanged, so a
registry alias that moves mid-rollout does not change the running rollout.
"""

from __future__ import annotations

from controller.domain import naming
from controller.domain.machine import changes, endings, situations, turns
from controller.resources import releasestatus

Phase = releasestatus.Phase


def resolve(turn: turns.Turn) -> changes.Target | None:
    reference = naming.build_model_reference(turn.spec.model)
    pinned = turn.status.resolved_model
    if pinned is None or pinned.reference != reference:
        found = turn.obs.model
        if found is None:
            return None
        if found.unmet(turn.spec.model.require_tags):
            return None  # the pre-flight gate: nothing starts until it holds
        pinned = releasestatus.ResolvedModel(reference=reference, version=found.version, uri=found.uri)
        turn.change(changes.model_pinned(turn.status, pinned))
    return changes.Target(
        revision=naming.build_revision(turn.spec.serving, turn.spec.model.name, pinned.version),
        model_version=pinned.version,
        model_uri=pinned.uri,
        gpus_per_replica=turn.spec.gpus_per_replica,
    )


def without_target(turn: turns.Turn) -> turns.Move:
    """No rollout can start: hold the world on stable (abandoning any canary) and say why."""
    phase, reason, message = _unresolved_reason(turn)
    st = turn.status
    if st.canary_revision is not None and st.stable_revision is not None:
        endings.abandon_canary(
            turn, "RolloutAbandoned", f"rollout of {st.canary_revision} abandoned: {message}"
        )
        return turn.move()
    if phase == Phase.FAILED and st.stable_revision is not None:
        phase = Phase.BLOCKED  # the new model cannot start, but stable serves as before
    if (st.phase, st.reason, st.message) != (phase, reason, message):
        turn.change(changes.halted(st, phase, reason, message))
        turn.event(reason, message, warning=phase in (Phase.FAILED, Phase.BLOCKED))
        return turn.move()
    if st.stable_revision is None:
        return turn.move()
    return situations.hold(turn)


def _unresolved_reason(turn: turns.Turn) -> tuple[Phase, str, str]:
    model = turn.spec.model
    wanted = f"{model.name} {'version ' + model.version if model.version else 'alias ' + str(model.alias)}"
    found = turn.obs.model
    if found is not None:
        # Waiting, not failed: registration finishes, a validation pipeline sets its tag, and the
        # release starts then.
        reason = "RequiredTagsMissing" if found.ready else "ModelVersionNotReady"
        unmet = found.unmet(model.require_tags)
        return (
            Phase.PENDING,
            reason,
            f"model {model.name} version {found.version} {unmet}; it starts once it holds",
        )
    if turn.obs.model_error:
        return Phase.FAILED, "ModelNotResolved", f"cannot resolve {wanted}: {turn.obs.model_error}"
    return Phase.PENDING, "ResolvingModel", f"waiting for the registry to resolve {wanted}"
