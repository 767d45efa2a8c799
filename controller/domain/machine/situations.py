"""The situations a release can be in outside the steps of a rollout: first deploy, steady on
stable, holding after a rollback, and starting a rollout."""

from __future__ import annotations

from controller.domain import actions, naming, planning
from controller.domain.machine import changes, converge, endings, turns
from controller.resources import releasestatus

Phase = releasestatus.Phase
Want = converge.Want


def first_deploy(turn: turns.Turn, target: changes.Target) -> turns.Move:
    """No stable yet: deploy the revision whole, route to it when warm, and call it stable."""
    st = turn.status
    replicas = turn.spec.serving.replicas
    if st.canary_revision != target.revision:
        message = f"deploying model {target.model_version} (revision {target.revision})"
        turn.change(changes.first_deploy_started(st, target, message, turn.now))
        turn.event("FirstDeploy", message)
        return turn.move()
    if st.phase == Phase.FAILED:
        return turn.move()  # left as it is for debugging, until the spec changes or a retry
    name = turn.workload_name(target.revision)
    if converge.converge(
        turn, {name: Want(replicas, turn.create(target, replicas, actions.Track.STABLE))}, None
    ):
        return turn.move()
    workload = turn.obs.workloads.get(name)
    warm, warm_at = turn.warm(workload, replicas)
    if warm:
        # Route to it before calling it stable: a route still aimed at the production Service
        # would otherwise reach the next rollout's canary the moment its pods are Ready.
        traffic = actions.SetTrafficWeight(
            stable_revision=target.revision, canary_revision=None, canary_weight=0
        )
        if converge.converge(turn, {name: Want(replicas)}, traffic):
            return turn.move()
        message = f"serving model {target.model_version} (revision {target.revision})"
        turn.change(changes.first_deploy_done(st, target, replicas, message))
        endings.owe_promotion(turn, target)
        turn.notify(actions.NotificationEvent.PROMOTED, target.revision, "deployed", message)
        turn.event("Deployed", message)
        return turn.move()
    deadline = turn.deadline()
    if turn.now >= deadline:
        message = f"first deploy: {turn.readiness(name, workload, replicas)} after {turn.deadline_text()}"
        turn.change(changes.halted(st, Phase.FAILED, "ProgressDeadlineExceeded", message))
        turn.notify(actions.NotificationEvent.FAILED, target.revision, "failed", message)
        turn.event("ProgressDeadlineExceeded", message, warning=True, key="first-deploy")
        return turn.move()
    return turn.move(turns.earliest(deadline, warm_at))


def steady(turn: turns.Turn, target: changes.Target) -> turns.Move:
    """The spec asks for what stable already serves: keep it whole and alone."""
    st = turn.status
    if st.canary_revision is not None:
        endings.abandon_canary(
            turn, "RolloutAbandoned", f"the spec is back at stable revision {target.revision}"
        )
        return turn.move()
    if st.phase != Phase.SUCCEEDED:
        message = f"serving model {st.stable_model_version} (revision {target.revision})"
        if st.last_rollback is not None and st.phase == Phase.ROLLED_BACK:
            message += f"; the rollout of revision {st.last_rollback.revision} was rolled back"
        turn.change(changes.stable_again(st, message))
        turn.event("Stable", message)
        return turn.move()
    replicas = turn.spec.serving.replicas
    if st.stable_replicas != replicas or st.stable_gpus_per_replica != target.gpus_per_replica:
        turn.change(changes.stable_footprint_set(st, replicas, target.gpus_per_replica))
        return turn.move()
    if retire_due(turn):
        return turn.move()
    name = turn.workload_name(target.revision)
    create = turn.create(target, replicas, actions.Track.STABLE)
    wants = {name: Want(replicas, create), **converge.retiring_wants(turn)}
    traffic = actions.SetTrafficWeight(stable_revision=target.revision, canary_revision=None, canary_weight=0)
    if converge.converge(turn, wants, traffic):
        return turn.move()
    return turn.move(min((r.at for r in turn.status.retiring), default=None))


def hold(turn: turns.Turn) -> turns.Move:
    """Stable only, whole; everything else removed once it has no traffic."""
    st = turn.status
    if retire_due(turn):
        return turn.move()
    assert st.stable_revision is not None
    wants = {
        turn.workload_name(st.stable_revision): Want(turn.spec.serving.replicas),
        **converge.retiring_wants(turn),
    }
    traffic = actions.SetTrafficWeight(
        stable_revision=st.stable_revision, canary_revision=None, canary_weight=0
    )
    if converge.converge(turn, wants, traffic):
        return turn.move()
    return turn.move(min((r.at for r in st.retiring), default=None))


def retire_due(turn: turns.Turn) -> bool:
    due = [r for r in turn.status.retiring if r.at <= turn.now]
    if due:
        turn.change(changes.retirements_done(turn.status, turn.now))
        for r in due:
            message = f"previous stable {r.name} removed after the scale-down delay"
            turn.event("ScaledDown", message, scope=f"retired/{r.name}")
    return bool(due)


def begin(turn: turns.Turn, target: changes.Target) -> turns.Move:
    """A new revision: abandon any other canary, then start the rollout if its plan fits."""
    st = turn.status
    if st.canary_revision is not None:
        endings.abandon_canary(
            turn, "RolloutSuperseded", f"revision {st.canary_revision} abandoned for {target.revision}"
        )
        return turn.move()
    plan = turn.plan
    if isinstance(plan, planning.Refusal):
        if (st.phase, st.reason, st.message) != (Phase.BLOCKED, plan.reason, plan.message):
            turn.change(changes.halted(st, Phase.BLOCKED, plan.reason, plan.message))
            turn.notify(actions.NotificationEvent.FAILED, target.revision, "refused", plan.message)
            turn.event(plan.reason, plan.message, warning=True)
            return turn.move()
        return hold(turn)
    if retire_due(turn):
        return turn.move()
    for early in st.retiring:  # the new rollout's plan has no room for them: removed now, and said
        turn.event(
            "ScaledDown",
            f"previous stable {early.name} removed before its scale-down delay ended: a new rollout starts",
            scope=f"retired/{early.name}",
        )
    again = st.last_rollback is not None and st.last_rollback.revision == target.revision
    message = (
        f"rolling out model {target.model_version} (revision {target.revision}) over {len(plan.steps)} steps"
    )
    turn.change(
        changes.started_rollout(
            st,
            target,
            attempt=st.attempt + 1 if again else 1,
            steps_hash=naming.build_steps_hash(turn.spec.strategy),
            message=message,
            now=turn.now,
        )
    )
    turn.notify(actions.NotificationEvent.STARTED, target.revision, "started", message)
    turn.event("RolloutStarted", message)
    return turn.move()


def idle_adopted(turn: turns.Turn, idle: turns.Move) -> turns.Move:
    """When nothing else moves and the release serves: the Deployment its workloadRef adopted serves
    no more. It is scaled to zero (Argo Rollouts' `scaleDown: onsuccess`) and otherwise left as it
    is; scaled again by someone (a Helm upgrade, an Argo CD sync), it is scaled down again."""
    ref, adopted = turn.spec.serving.workload_ref, turn.spec.serving.adopted
    if ref is None or adopted is None or adopted.replicas == 0 or turn.status.stable_revision is None:
        return idle
    turn.act(actions.ScaleWorkload(name=ref.name, replicas=0))
    message = f"Deployment {ref.name} scaled from {adopted.replicas} to 0: the release serves its template"
    turn.event("AdoptedScaledDown", message, key=f"adopted-{adopted.replicas}")
    return turn.move(idle.wake_at)


def size_said(turn: turns.Turn, idle: turns.Move) -> turns.Move:
    """When nothing else moves: status says what `/scale` reads (the pods asked for, the selector)."""
    replicas = sum(w.replicas for w in turn.obs.workloads.values())
    if (turn.status.replicas, turn.status.selector) == (replicas, turn.obs.pod_selector):
        return idle
    turn.change(changes.size_observed(turn.status, replicas, turn.obs.pod_selector))
    return turn.move(idle.wake_at)
