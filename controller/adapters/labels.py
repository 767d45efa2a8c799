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
