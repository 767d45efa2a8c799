"""A GitSource sync from a real repository into the real API server: it never prunes more than it
can justify, says every prune and every refusal in an Event and in status, and shows what it keeps."""

from __future__ import annotations

import itertools
import pathlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controller.adapters import events, kubeapi
from controller.adapters.git import gitremote, gitsync, syncplan
from controller.cli import ctl, explain
from controller.resources import kinds, meta
from tests import gitrepos

NAMESPACES = (f"sync-{n}-{uuid.uuid4().hex[:6]}" for n in itertools.count())


def release(name: str) -> str:
    return f"""\
apiVersion: modelrelease.dev/v1alpha1
kind: ModelRelease
metadata: {{name: {name}}}
spec:
  model: {{name: {name}, version: "1"}}
  serving:
    image: registry.example.com/triton:24.08
    replicas: 2
    resources: {{limits: {{nvidia.com/gpu: 1}}}}
  strategy: {{canary: {{steps: [{{setWeight: 50}}]}}}}
"""


class Source:
    """One GitSource in its own namespace, synced by hand at a clock that moves a minute a sync."""

    def __init__(self, api: kubeapi.KubeApi, tmp_path: pathlib.Path, **spec: Any) -> None:
        self.api = api
        self.namespace = next(NAMESPACES)
        api.create(
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}},
        )
        self.remote = gitrepos.BareRemote(tmp_path)
        self.person = gitrepos.Clone(self.remote.url, tmp_path / "ada")
        self.now = datetime(2026, 12, 3, tzinfo=UTC)
        self.workspaces = gitremote.Workspaces(tmp_path)
        body = {
            "apiVersion": meta.API_VERSION,
            "kind": "GitSource",
            "metadata": {"name": "releases", "namespace": self.namespace},
            "spec": {"url": self.remote.url, "paths": ["models"], "prune": True, **spec},
        }
        api.create(kubeapi.build_path(meta.API_VERSION, "gitsources", self.namespace), body)
        self.sync_ = gitsync.GitSourceSync(
            api, self.workspaces, events.KubeEvents(api, self.clock), self.clock
        )

    def clock(self) -> datetime:
        return self.now

    def change(self, **spec: Any) -> None:
        self.api.merge_patch(self.path(), {"spec": spec})

    def path(self) -> str:
        return kubeapi.build_path(meta.API_VERSION, "gitsources", self.namespace, "releases")

    def sync(self) -> dict[str, Any]:
        self.now += timedelta(minutes=1)
        source = kinds.from_cluster(kinds.GitSource, self.api.get(self.path()))
        self.sync_.sync(source)
        return dict(self.api.get(self.path())["status"])

    def releases(self) -> set[str]:
        listed = self.api.get(kubeapi.build_path(meta.API_VERSION, "modelreleases", self.namespace))
        return {item["metadata"]["name"] for item in listed["items"]}

    def events(self, reason: str) -> list[str]:
        listed = self.api.get(f"/api/v1/namespaces/{self.namespace}/events")
        return [e["message"] for e in listed["items"] if e["reason"] == reason]


@pytest.fixture
def three(api: kubeapi.KubeApi, tmp_path: pathlib.Path) -> Iterator[Source]:
    """A source that manages three releases, all synced."""
    source = Source(api, tmp_path)
    source.person.write({f"models/{n}/release.yaml": release(n) for n in ("ranker", "scorer", "fraud")})
    source.person.commit_and_push("Three models")
    assert source.sync()["applied"] == ["ModelRelease/fraud", "ModelRelease/ranker", "ModelRelease/scorer"]
    yield source
    source.workspaces.close()


def ready(status: dict[str, Any]) -> tuple[str, str]:
    (condition,) = [c for c in status["conditions"] if c["type"] == "Ready"]
    return condition["status"], condition["reason"]


def test_a_typo_in_the_paths_prunes_nothing_and_names_what_it_would_have_deleted(three: Source) -> None:
    three.change(paths=["modles"])
    status = three.sync()
    assert three.releases() == {"ranker", "scorer", "fraud"}
    assert status["pruned"] == []
    assert ready(status) == ("False", "PruneRefused")
    refused = status["pruneRefused"]
    assert refused["objects"] == ["ModelRelease/fraud", "ModelRelease/ranker", "ModelRelease/scorer"]
    assert "modles" in refused["reason"]
    (said,) = three.events("PruneRefused")
    assert "ModelRelease/ranker" in said
    assert "modles" in said
    # Putting the path right clears the refusal.
    three.change(paths=["models"])
    status = three.sync()
    assert "pruneRefused" not in status
    assert ready(status) == ("True", "Synced")


def test_emptying_every_path_is_refused_unless_allow_empty_says_so(three: Source) -> None:
    three.person.remove(
        "models/ranker/release.yaml", "models/scorer/release.yaml", "models/fraud/release.yaml"
    )
    three.person.write({"models/README.yaml": "# the models moved\n"})
    three.person.commit_and_push("Remove every model")
    status = three.sync()
    assert three.releases() == {"ranker", "scorer", "fraud"}
    assert "holds no manifest" in status["pruneRefused"]["reason"]
    three.change(allowEmpty=True)
    status = three.sync()
    assert three.releases() == set()
    assert sorted(status["pruned"]) == ["ModelRelease/fraud", "ModelRelease/ranker", "ModelRelease/scorer"]


def test_a_sync_that_would_delete_more_than_the_configured_share_is_refused(three: Source) -> None:
    three.person.remove("models/ranker/release.yaml", "models/scorer/release.yaml")
    three.person.commit_and_push("Retire two of three")
    status = three.sync()
    assert three.releases() == {"ranker", "scorer", "fraud"}
    assert "2 of the 3" in status["pruneRefused"]["reason"]
    assert "maxPrunePercent 50%" in status["pruneRefused"]["reason"]
    three.change(maxPrunePercent=70)
    status = three.sync()
    assert three.releases() == {"fraud"}
    assert ready(status) == ("True", "Synced")


def test_every_prune_is_said_in_an_event_and_kept_in_a_bounded_history(three: Source) -> None:
    said = []
    for name in ("ranker", "scorer"):
        three.person.remove(f"models/{name}/release.yaml")
        commit = three.person.commit_and_push(f"Retire {name}")
        assert three.sync()["pruned"] == [f"ModelRelease/{name}"]
        said.append(f"pruned at {commit[:12]} (gone from Git): ModelRelease/{name}")
        three.person.write({f"models/{name}/release.yaml": release(name)})
        three.person.commit_and_push(f"Bring {name} back")
        three.sync()
    history = three.sync()["pruneHistory"]
    assert [record["objects"] for record in history] == [["ModelRelease/ranker"], ["ModelRelease/scorer"]]
    assert sorted(three.events("Pruned")) == sorted(said)


def test_with_prune_off_what_git_no_longer_holds_is_kept_and_shown_as_orphaned(
    api: kubeapi.KubeApi, tmp_path: pathlib.Path
) -> None:
    source = Source(api, tmp_path, prune=False)
    source.person.write({f"models/{n}/release.yaml": release(n) for n in ("ranker", "scorer")})
    source.person.commit_and_push("Two models")
    source.sync()
    source.person.remove("models/scorer/release.yaml")
    source.person.commit_and_push("Retire scorer")
    status = source.sync()
    assert source.releases() == {"ranker", "scorer"}
    assert status["orphaned"] == ["ModelRelease/scorer"]
    assert "1 orphaned" in status["message"]
    (said,) = source.events("Orphaned")
    assert "ModelRelease/scorer" in said
    source.workspaces.close()


def test_an_api_version_typo_quarantines_its_file_and_never_prunes_the_running_release(
    three: Source,
) -> None:
    three.person.write(
        {"models/ranker/release.yaml": release("ranker").replace("modelrelease.dev/", "modelreleases.dev/")}
    )
    three.person.commit_and_push("A typo")
    status = three.sync()
    assert three.releases() == {"ranker", "scorer", "fraud"}
    assert status["errors"] == [
        {
            "file": "models/ranker/release.yaml",
            "line": 1,
            "message": "apiVersion: group 'modelreleases.dev' is not modelrelease.dev, the group of "
            "ModelRelease; write apiVersion: modelrelease.dev/v1alpha1",
        }
    ]
    assert status["pruned"] == []
    assert ready(status) == ("False", "ManifestsQuarantined")


BOMB = """\
a: &a ["xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
kind: ModelRelease
apiVersion: modelrelease.dev/v1alpha1
"""


def test_an_oversized_file_and_a_yaml_bomb_are_quarantined_alone_while_a_good_change_syncs(
    three: Source,
) -> None:
    padding = "# " + "x" * 98 + "\n"
    three.person.write(
        {
            "models/ranker/release.yaml": release("ranker") + padding * 11_000,  # 1.1 MB
            "models/scorer/release.yaml": BOMB,  # 0.5 kB, 7 MB expanded
            "models/fraud/release.yaml": release("fraud").replace('version: "1"', 'version: "2"'),
        }
    )
    three.person.commit_and_push("One good change, one huge file, one bomb")
    status = three.sync()
    assert three.releases() == {"ranker", "scorer", "fraud"}
    fraud = three.api.get(kubeapi.build_path(meta.API_VERSION, "modelreleases", three.namespace, "fraud"))
    assert fraud["spec"]["model"]["version"] == "2"
    assert status["errors"] == [
        {"file": "models/ranker/release.yaml", "message": "is over 1048576 bytes, the limit for a file"},
        {
            "file": "models/scorer/release.yaml",
            "line": 1,
            "message": "expands (its aliases repeated) to over 1048576 bytes, the limit for a manifest",
        },
    ]


def test_the_release_itself_says_its_file_is_quarantined_or_that_git_no_longer_holds_it(
    three: Source,
) -> None:
    three.person.write(
        {"models/ranker/release.yaml": release("ranker").replace("replicas: 2", "replicas: two")}
    )
    three.person.remove("models/scorer/release.yaml")
    three.person.commit_and_push("A typo in ranker; scorer retired")
    three.change(prune=False)
    three.sync()
    source = three.api.get(three.path())

    def told(name: str) -> str:
        body = three.api.get(kubeapi.build_path(meta.API_VERSION, "modelreleases", three.namespace, name))
        now = datetime(2026, 12, 3, tzinfo=UTC)
        return explain.explain(body, now, source) + "\n" + ctl.render_status(body, [], now, source)

    ranker = told("ranker")
    assert ranker.count("Its file models/ranker/release.yaml:8 is quarantined by GitSource releases") == 2
    assert "Git changes to it are not applied until the file is fixed" in ranker
    assert (
        told("scorer").count("Git no longer holds it; GitSource releases keeps it because prune is off") == 2
    )
    assert "quarantined" not in told("fraud")


def test_a_refusal_over_hundreds_of_objects_names_ten_in_its_message_and_keeps_all_in_status() -> None:
    outcome = syncplan.SyncOutcome(commit="c0ffee" * 7, prune_refused="path scales holds no manifest")
    outcome.unpruned = [f"ModelRelease/model-{n:03}" for n in range(300)]
    message = syncplan.describe(outcome, prune=True)
    assert "ModelRelease/model-009 and 290 more" in message
    assert "model-010" not in message
