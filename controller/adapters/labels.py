"""Label and annotation keys the controller puts on what it creates, and reads back."""

from __future__ import annotations

from controller.resources import meta

RELEASE = f"{meta.GROUP}/release"  # value: naming.release_label(name), at most 63 characters
RELEASE_NAME = f"{meta.GROUP}/release-name"  # annotation: the release's full name, to find it from a pod
REVISION = f"{meta.GROUP}/revision"
TRACK = f"{meta.GROUP}/track"
MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "modelrelease"
MODEL_VERSION = f"{meta.GROUP}/model-version"
STABLE_REVISION = f"{meta.GROUP}/stable-revision"
CANARY_REVISION = f"{meta.GROUP}/canary-revision"
CANARY_WEIGHT = f"{meta.GROUP}/canary-weight"
COMMAND_PREFIX = (
    f"{meta.GROUP}/command-"  # command-abort, command-promote, command-promote-full, command-retry
)
# What a GitSource puts on what it applies: the label selects what it may prune; the annotations
# say where a release came from (the write-back goes to that file, `kubectl modelrelease` shows it).
GIT_SOURCE = f"{meta.GROUP}/git-source"  # label and annotation: the GitSource that applied it
GIT_PATH = f"{meta.GROUP}/git-path"  # annotation: its file in that repository
GIT_COMMIT = f"{meta.GROUP}/git-commit"  # annotation: the commit it was applied from
# On an Approval made from Slack: how it came, who pressed, which message.
VIA = f"{meta.GROUP}/via"
SLACK_USER = f"{meta.GROUP}/slack-user"
SLACK_MESSAGE = f"{meta.GROUP}/slack-message"
