"""Converge: the desired-state actions that make the world match what the status says.

Order keeps every intermediate state safe: traffic that takes exposure away first, then removals
and scale-downs (freeing GPUs), then creations and scale-ups, and traffic that adds exposure last.
A traffic change that adds exposure waits while a workload it would send traffic to has no Ready pod.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.domain import actions
from controller.domain import observations as obs_
from controller.domain.machine import turns


@dataclass(frozen=True)
class Want:
    replicas: int | None  # None: leave the replica count as it is
    create: actions.CreateWorkload | None = None


def retiring_wants(turn: turns.Turn) -> dict[str, Want]:
    return {r.name: Want(None) for r in turn.status.retiring}


def converge(turn: turns.Turn, wants: dict[str, Want], traffic: actions.SetTrafficWeight | None) -> bool:
    """Queue the actions that make the world match `wants` and `traffic`; True if any, or if held."""
    world = turn.obs.workloads
    downs: list[actions.Action] = [actions.DeleteWorkload(name=n) for n in sorted(world) if n not in wants]
    ups: list[actions.Action] = []
    for name, want in wants.items():
        seen = world.get(name)
        if seen is None:
            if want.create is not None:
                ups.append(want.create)
        elif want.replicas is not None and seen.replicas != want.replicas:
            scale = actions.ScaleWorkload(name=name, replicas=want.replicas)
            (downs if want.replicas < seen.replicas else ups).append(scale)
    first: list[actions.Action] = []
    last: list[actions.Action] = []
    current = turn.obs.traffic
    held = False
    if traffic is not None and (current is None or not current.matches(traffic)):
        if not adds_exposure(traffic, current):
            first.append(traffic)
        else:
            if (
                current is not None
                and traffic.canary_revision is not None
                and current.canary_revision != traffic.canary_revision
                and current.reaches_canary
            ):
                # The new canary's first exposure (a shadow's mirror, a cohort) waits for it to be
                # Ready, but what still reaches the previous canary is taken away first: the
                # previous canary may be removed meanwhile.
                quiet = actions.SetTrafficWeight(
                    stable_revision=traffic.stable_revision,
                    canary_revision=traffic.canary_revision,
                    canary_weight=0,
                )
                first.append(quiet)
            if is_ready_for(turn.obs, traffic):
                last.append(traffic)
            else:
                # Never route toward a workload that is not Ready, whatever the status says
                # (e.g. resuming from a status older than the world): wait for it instead.
                held = True
                turn.wait_until(turn.now + turns.POLL)
    queued = [*first, *downs, *ups, *last]
    turn.act(*queued)
    return bool(queued) or held


def is_ready_for(observations: obs_.Observations, traffic: actions.SetTrafficWeight) -> bool:
    receiving = {traffic.stable_revision} if traffic.canary_weight < 100 else set()
    if traffic.canary_revision is not None and traffic.reaches_canary:
        receiving.add(traffic.canary_revision)
    ready = {w.revision for w in observations.workloads.values() if w.ready_replicas > 0}
    return receiving <= ready


def adds_exposure(desired: actions.SetTrafficWeight, current: obs_.Traffic | None) -> bool:
    """True when the change sends traffic somewhere it did not go before (so it waits until last)."""
    if current is None:
        return True
    if desired.stable_revision != current.stable_revision:
        return True
    if not desired.reaches_canary or desired.canary_revision is None:
        return False
    if desired.canary_revision != current.canary_revision:
        return True
    more_mirrored = desired.mirror_percent > current.mirror_percent
    new_cohort = desired.header_route is not None and desired.header_route != current.header_route
    return desired.canary_weight > current.canary_weight or more_mirrored or new_cohort
