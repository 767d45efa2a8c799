"""The status write is one RFC 7386 merge patch: changed keys, null for removed ones, lists whole."""

from __future__ import annotations

from controller.runtime import statuspatch
from tests import mergepatch as patching


def test_the_patch_carries_only_what_changed_and_nulls_what_went() -> None:
    old = {"phase": "Progressing", "canaryRevision": "c1", "currentStepIndex": 1, "analysis": [{"run": "a"}]}
    new = {"phase": "Progressing", "currentStepIndex": 2, "analysis": [{"run": "a"}, {"run": "b"}]}
    assert statuspatch.build_merge_patch(old, new) == {
        "canaryRevision": None,
        "currentStepIndex": 2,
        "analysis": [{"run": "a"}, {"run": "b"}],
    }


def test_nested_objects_are_patched_key_by_key() -> None:
    old = {"handledCommands": {"abort": "t1", "retry": "t2"}, "resolvedModel": {"version": "6", "uri": "u6"}}
    new = {"handledCommands": {"abort": "t1", "retry": "t3"}, "resolvedModel": {"version": "7", "uri": "u6"}}
    assert statuspatch.build_merge_patch(old, new) == {
        "handledCommands": {"retry": "t3"},
        "resolvedModel": {"version": "7"},
    }


def test_applying_the_patch_to_the_old_status_gives_the_new_one() -> None:
    old = {"a": 1, "b": {"c": 2, "d": [1, 2]}, "e": "gone"}
    new = {"a": 1, "b": {"c": 3, "d": [2]}, "f": {"g": None or 0}}
    assert patching.merge_patch(old, statuspatch.build_merge_patch(old, new)) == new
