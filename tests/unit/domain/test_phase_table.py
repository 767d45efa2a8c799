"""The phase table: every phase change passes it, and docs/architecture.md draws exactly it."""

from __future__ import annotations

import pathlib
import re
from datetime import UTC, datetime

import pytest

from controller.domain import machine
from controller.domain.machine import changes, table
from controller.resources import releasestatus

Phase = releasestatus.Phase
ARCHITECTURE = pathlib.Path(__file__).parents[3] / "docs" / "architecture.md"
EDGE = re.compile(r"^\s*(\[\*\]|\w+)\s*-->\s*(\w+)\s*(?::.*)?$")
GROUP = re.compile(r"^\s*state\s+(\w+)\s*\{\s*$")


def _drawn_transitions() -> set[tuple[Phase, Phase]]:
    """The arrows of the phases diagram, an arrow to or from a group standing for each of its phases."""
    text = ARCHITECTURE.read_text()
    section = text[text.index("## Phases and transitions") :]
    diagram = section[section.index("```mermaid") : section.index("```", section.index("```mermaid") + 3)]
    groups: dict[str, set[str]] = {}
    edges: list[tuple[str, str]] = []
    current: str | None = None
    for line in diagram.splitlines()[2:]:
        if (opened := GROUP.match(line)) is not None:
            current = opened.group(1)
            groups[current] = set()
        elif line.strip() == "}":
            current = None
        elif (edge := EDGE.match(line)) is not None:
            source, dest = edge.groups()
            edges.append((source, dest))
            if current is not None:
                groups[current] |= {source, dest}
        elif line.strip():
            raise AssertionError(f"unreadable line in the phases diagram: {line!r}")

    def phases(name: str) -> set[Phase]:
        return {Phase(member) for member in groups.get(name, {name})}

    return {(a, b) for source, dest in edges if source != "[*]" for a in phases(source) for b in phases(dest)}


def test_the_phase_diagram_in_the_architecture_doc_draws_exactly_the_allowed_transitions() -> None:
    allowed = {(source, dest) for source, dests in machine.ALLOWED.items() for dest in dests}
    drawn = _drawn_transitions()
    assert drawn - allowed == set(), "drawn but not allowed"
    assert allowed - drawn == set(), "allowed but not drawn"
    assert set(machine.ALLOWED) == set(Phase)


def test_a_phase_change_the_table_does_not_list_raises() -> None:
    succeeded = releasestatus.ModelReleaseStatus(phase=Phase.SUCCEEDED)
    with pytest.raises(table.IllegalTransitionError, match="Succeeded → Paused"):
        changes.paused(succeeded, "PauseStep", "step 1: paused")


def test_a_status_change_naming_a_field_the_status_lacks_raises_instead_of_dropping_it() -> None:
    status = releasestatus.ModelReleaseStatus()
    with pytest.raises(changes.UnknownFieldError, match="canary_wieght"):
        changes._changed(status, {"canary_wieght": 5})


def test_the_events_reach_exactly_the_allowed_phase_changes_and_none_outside_them() -> None:
    by_events = {
        (phase, target)
        for (phase, _), targets in table.TRANSITIONS.items()
        for target in targets
        if target != phase
    }
    allowed = {(source, dest) for source, dests in table.ALLOWED.items() for dest in dests}
    assert by_events == allowed
    assert set(table.TARGETS) == set(table.Event)


def test_a_phase_change_naming_no_event_raises() -> None:
    progressing = releasestatus.ModelReleaseStatus(phase=Phase.PROGRESSING)
    with pytest.raises(table.IllegalTransitionError, match="names no event"):
        changes._changed(progressing, {"phase": Phase.PAUSED})


def test_an_event_leading_to_a_phase_it_does_not_lead_to_raises_even_where_the_phases_allow_it() -> None:
    progressing = releasestatus.ModelReleaseStatus(phase=Phase.PROGRESSING)
    assert Phase.SUCCEEDED in table.ALLOWED[Phase.PROGRESSING]
    with pytest.raises(table.IllegalTransitionError, match=r"Progressing → Succeeded \(PAUSED\)"):
        changes._changed(progressing, {"phase": Phase.SUCCEEDED}, table.Event.PAUSED)


def test_an_event_unlisted_for_the_current_phase_raises() -> None:
    succeeded = releasestatus.ModelReleaseStatus(phase=Phase.SUCCEEDED)
    assert (Phase.SUCCEEDED, table.Event.PROMOTE_FULL) not in table.TRANSITIONS
    with pytest.raises(table.IllegalTransitionError, match="PROMOTE_FULL is not an event of Succeeded"):
        changes.promoted_full(succeeded, 3, datetime(2026, 1, 1, tzinfo=UTC))


def test_a_promotion_is_an_event_only_of_promoting_and_a_retry_only_of_a_halted_or_rolled_back_release() -> (
    None
):
    now = datetime(2026, 1, 1, tzinfo=UTC)
    paused = releasestatus.ModelReleaseStatus(phase=Phase.PAUSED)
    with pytest.raises(table.IllegalTransitionError, match="RETRY is not an event of Paused"):
        changes.retry_requested(paused, now)
    assert {phase for phase, event in table.TRANSITIONS if event == table.Event.PROMOTED} == {Phase.PROMOTING}
    rolled_back = releasestatus.ModelReleaseStatus(phase=Phase.ROLLED_BACK)
    assert changes.retry_requested(rolled_back, now).phase == Phase.PENDING
