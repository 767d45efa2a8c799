"""Editing one value of a manifest people wrote: everything else in the file stays byte for byte."""

from __future__ import annotations

import pytest

from controller import yamledit

FILE = """\
# Team ranker. Bump the version to release.
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: ranker}
---
apiVersion: modelrelease.dev/v1alpha1
kind: ModelRelease
metadata:
  name: ranker   # do not rename
spec:
  model:
    name: ranker
    version: "7"   # PR 41
  serving: {image: triton}
"""


def test_only_the_value_changes_and_comments_quotes_and_other_documents_stay() -> None:
    edited = yamledit.set_scalar(
        FILE, kind="ModelRelease", name="ranker", path=("spec", "model", "version"), value="6"
    )
    assert edited == FILE.replace('version: "7"', 'version: "6"')


@pytest.mark.parametrize(
    ("written", "value", "expected"),
    [
        ("version: '7'", "6", "version: '6'"),
        ("version: v7", "v6", "version: v6"),
        ("version: v7", "6", 'version: "6"'),  # plain 6 would read as a number
        ("version: v7", "true", 'version: "true"'),
    ],
)
def test_the_quoting_follows_the_original_and_a_string_stays_a_string(
    written: str, value: str, expected: str
) -> None:
    text = FILE.replace('version: "7"', written)
    edited = yamledit.set_scalar(
        text, kind="ModelRelease", name="ranker", path=("spec", "model", "version"), value=value
    )
    assert edited == text.replace(written, expected)


def test_reading_and_editing_name_what_is_missing() -> None:
    assert (
        yamledit.read_scalar(FILE, kind="ModelRelease", name="ranker", path=("spec", "model", "alias"))
        is None
    )
    with pytest.raises(yamledit.EditError, match="no ModelRelease named fraud"):
        yamledit.read_scalar(FILE, kind="ModelRelease", name="fraud", path=("spec",))
    with pytest.raises(yamledit.EditError, match=r"has no spec\.model\.alias to change"):
        yamledit.set_scalar(
            FILE, kind="ModelRelease", name="ranker", path=("spec", "model", "alias"), value="x"
        )
    with pytest.raises(yamledit.EditError, match="not a single value"):
        yamledit.set_scalar(FILE, kind="ModelRelease", name="ranker", path=("spec", "model"), value="x")
