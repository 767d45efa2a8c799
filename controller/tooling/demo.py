"""`make demo` (`python -m controller.tooling.demo`): the whole story on one machine, in one terminal.

It starts a real Kubernetes control plane (kube-apiserver, etcd, controller-manager, scheduler and
KWOK's kubelets with GPU nodes, built from Go modules by `make controlplane`: tests/controlplane) with
deploy/'s CRDs and RBAC, the fleet that serves what the routes send the pods, a real Prometheus that
scrapes every pod, the controller as deploy/'s ServiceAccount with `--analysis prometheus`, and a release
repository made from gitops-repo-template/ (a bare Git remote and a clone), which a GitSource
syncs. Release `fraud-detector` serves model 1; each next model is released as a merged PR
would be — the PR checks (`validate`, `plan`) run, one line changes, it is pushed: model 2 (as
good) goes through canary steps with analysis, waits at an approval step until ada presses
Approve in Slack, and is promoted; model 3 (a slower p99 and three times the errors) is rolled
back by the judge, and the controller commits model 2 back to the repository. Each rollout is one
Slack thread (a stand-in Slack on loopback, reached through slack-sdk), printed at the end.
Nothing is scripted: the judge decides from what Prometheus scraped, and the approval is a signed
button press. Time is compressed by configuration only (2-second intervals, 5,000 requests per
second).

The live view is `kubectl modelrelease status`; a summary ends it. The exit code is 0 only when
model 2 was promoted and model 3 rolled back by the analysis. `--keep` leaves everything running
and prints the KUBECONFIG and commands to try, until Ctrl-C. Everything started is stopped at the
end, also on failure; files live under `--work` (default `.demo/` in the work tree).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import yaml

from analysis import verdicts
from controller import releasetree
from controller.adapters.git import touched
from controller.adapters.prometheus import prometheus_source
from controller.cli import ctl, explain, planview, report, reporthtml
from controller.resources import releasestatus
from controller.tooling import fleet, mlflowdemo, processes, prometheus_process, releaserepo
from controller.tooling import slackstandin as slack
from tests.cluster import access, harness
from tests.controlplane import cluster
from tests.controlplane.kube import Kube, KubeError, wait_until

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo"
RELEASE = "fraud-detector"
NAMESPACE = "default"
GROUP = "modelrelease.dev"


RELEASE_FILE = f"releases/{RELEASE}/release.yaml"
VERSIONS = ("1", "2", "3")  # registered in the demo's MLflow registry, each validated
SLACK_CHANNEL = "ml-releases"
SHADOW_TEMPLATE = "shadow-slo"  # the release's first step mirrors traffic and is judged by it
# The stand-in's credentials: files the controller reads, as it would read mounted Secrets.
SLACK_TOKEN, SLACK_SECRET = "xoxb-demo-bot-token", "demo-signing-secret"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclasses.dataclass(frozen=True)
class Outcome:
    version: str
    status: releasestatus.ModelReleaseStatus
    seconds: float
    commit: str = ""  # the merge that released it
    proposed: str = ""  # the bump branch modelrelease pushed when the followed alias moved
    proposed_after: float | None = None  # seconds from the alias move to that push
    started_after: float | None = None  # seconds from the push to the rollout's start in the cluster
    written_back: str = ""  # `git log -1` of the commit the rollback wrote, if any
    slack_thread: str = ""  # the rollout's Slack thread, as the stand-in holds it
    approved_in_slack: str = ""  # who pressed Approve, as the Approval records it
    # The release when the rollout first showed how it ended (RolledBack, or Succeeded on this
    # version). Explained from this, not read again later: a rollback's commit reaches Git and the
    # GitSource syncs it back, so the live release soon serves the old model again (Succeeded) —
    # sometimes before the registry has heard, which is when the rollout counts as settled.
    release: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def record(self) -> releasestatus.RolloutRecord | None:
        return next((r for r in reversed(self.status.history) if r.model_version == self.version), None)


class Demo:
    def __init__(self, work: pathlib.Path, *, out: Callable[[str], None] = print, live: bool = True) -> None:
        self.work = work
        self.out = out
        self.live = live and sys.stdout.isatty()
        self.stack = contextlib.ExitStack()
        self.cluster: harness.Cluster | None = None
        self.slack: slack.SlackStandIn | None = None

    # -- starting everything ------------------------------------------------------------------

    def start(self, scenario: fleet.FleetScenario) -> None:
        if self.work.exists():
            shutil.rmtree(self.work)
        self.work.mkdir(parents=True)
        began = time.monotonic()
        self.cluster = harness.Cluster(self.work / "controlplane")
        self.stack.callback(self.cluster.stop)
        self.cluster.start()
        self.out(f"Kubernetes control plane up in {time.monotonic() - began:.1f} s (tests/controlplane)")
        self.kube: Kube = self.cluster.kube
        self.kubeconfig = self.cluster.plane.write_kubeconfig(self.work / "kubeconfig")
        # The controller runs as deploy/'s ServiceAccount, with the RBAC deploy/ grants it.
        token = self.cluster.token(access.ACCOUNT_NAMESPACE, access.ACCOUNT_NAME, seconds=24 * 3600)
        controller_kubeconfig = self.cluster.plane.write_kubeconfig(
            self.work / "controller.kubeconfig", token=token
        )
        serving = fleet.ServingFleet(self.kube, scenario, seed=7)
        targets = self.work / "targets.json"
        server = fleet.FleetServer(serving, targets, clock=time.time).start()
        self.stack.callback(server.stop)
        (self.work / "prometheus").mkdir()
        self.metrics_port = _free_port()  # the controller's own /metrics, scraped beside the fleet
        self.prometheus = prometheus_process.PrometheusServer(
            self.work / "prometheus", [f"127.0.0.1:{self.metrics_port}"], file_sd=targets
        ).start()
        self.stack.callback(self.prometheus.stop)
        self.slack = self.stack.enter_context(
            slack.SlackStandIn(
                token=SLACK_TOKEN, signing_secret=SLACK_SECRET, channels={SLACK_CHANNEL: "C0MLRELEASES"}
            )
        )
        (self.work / "slack-token").write_text(SLACK_TOKEN)  # in a cluster: Secrets mounted as files
        (self.work / "slack-signing-secret").write_text(SLACK_SECRET)
        self.interactions = f"http://127.0.0.1:{_free_port()}/slack/interactions"
        self.registry = mlflowdemo.create_registry(self.work / "mlflow", RELEASE, VERSIONS)
        log = (self.work / "controller.log").open("wb")
        self.stack.callback(log.close)
        flags = ["--standalone", "--poll-interval", "1", "--analysis", "prometheus"]
        flags += ["--metrics-port", str(self.metrics_port), "--metrics-host", "127.0.0.1"]
        flags += ["--registry", "mlflow", "--mlflow-tracking-uri", self.registry.uri]
        flags += [
            "--slack-token-file",
            str(self.work / "slack-token"),
            "--slack-signing-secret-file",
            str(self.work / "slack-signing-secret"),
            "--webhook-host",
            "127.0.0.1",
            "--webhook-port",
            self.interactions.split(":")[2].split("/")[0],
            "--slack-api-url",
            self.slack.api_url,
        ]
        controller = subprocess.Popen(
            processes.controller_command(controller_kubeconfig, *flags, "--prometheus", self.prometheus.url),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.stack.callback(processes.stop, controller)
        self.out(
            f"cluster {self.cluster.plane.url}, Prometheus {self.prometheus.url}, fleet on {server.address}, "
            f"Slack stand-in {self.slack.api_url}, MLflow registry {self.registry.uri}, "
            f"controller pid {controller.pid} (logs in {self.work})"
        )

    def stop(self) -> None:
        self.stack.close()

    # -- the story ----------------------------------------------------------------------------

    def apply(self, path: pathlib.Path) -> None:
        for document in yaml.safe_load_all(path.read_text()):
            self.kube.create(document, NAMESPACE)

    def pr_checks(self, branch: str) -> None:
        """What the PR's checks say before it is merged: validate, and the plan of the change."""
        clone = self.repo.clone_path
        tree = releasetree.read_paths([clone])
        verdict = f"{len(tree.problems)} problem(s)" if tree.problems else "valid"
        self.out(f"PR from {branch}: modelrelease validate: {len(tree.files)} files, {verdict}")
        release = next(m for m in tree.manifests if m.source.endswith(RELEASE_FILE))
        [plan] = planview.build(
            [touched.Change(release, why="", before=None)], tree.templates(), planview.Options()
        )
        for line in planview.render_text([plan]).splitlines()[-2:]:
            self.out(f"  modelrelease plan: {line.strip()}")

    def _release(self) -> dict[str, Any]:
        return self.kube.get("modelreleases", NAMESPACE, RELEASE, group=GROUP)

    def explain_and_report(self, settled: dict[str, Any]) -> list[str]:
        """Where the release ended and why (`kubectl modelrelease explain`) and the verdict report's
        page (`kubectl modelrelease report --html`), both of the release as it `settled` after the
        last rollout, and what the controller's own metrics say."""
        release = settled
        now = datetime.now(UTC)
        page = self.work / f"report-{RELEASE}.html"

        def template(name: str) -> dict[str, Any] | None:
            try:
                return self.kube.get("analysistemplates", NAMESPACE, name, group=GROUP)
            except KubeError as error:
                if error.code == 404:
                    return None  # gone: the report says so
                raise

        with prometheus_source.PrometheusSource(self.prometheus.url) as source:
            built = report.build_report(release, template, source, now)
        page.write_text(reporthtml.render_html(built), encoding="utf-8")
        decided = [
            f"    {each.record.template} at {each.where}: {report.decision_text(each)}"
            for each in built.analyses
        ]
        lines = ["", "  kubectl modelrelease explain " + RELEASE + ":"]
        lines += [f"    {line}" for line in textwrap.wrap(explain.explain(release, now), 100)]
        lines += [f"  kubectl modelrelease report {RELEASE} (replayed from Prometheus; plots in {page}):"]
        lines += decided
        self._scraped_since(now.timestamp())
        lines += ["  the controller's own metrics (deploy/monitoring/grafana-dashboard.json):"]
        for title, query in (
            ("rollouts by outcome", "sum by (outcome) (modelrelease_rollouts_total)"),
            ("analysis verdicts", 'sum by (verdict) (modelrelease_verdicts_total{metric=""})'),
            ("reconciles", "sum(modelrelease_reconcile_duration_seconds_count)"),
        ):
            said = ", ".join(
                f"{label} {value:.0f}"
                for label, value in _sample_values(self.prometheus.query(query))
                if value > 0
            )
            lines.append(f"    {title}: {said or '-'}")
        return lines

    def _scraped_since(self, moment: float, timeout: float = 15.0) -> None:
        """Until Prometheus has scraped the controller after `moment` (it scrapes every second)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(
                value > moment
                for _, value in _sample_values(self.prometheus.query("timestamp(modelrelease_build_info)"))
            ):
                return
            time.sleep(0.2)  # the next scrape is under a second away
        raise TimeoutError(f"Prometheus did not scrape the controller's /metrics within {timeout:.0f} s")

    def propose(self, version: str) -> tuple[str, float]:
        """The training pipeline moves the followed alias; modelrelease pushes the bump branch."""
        branch = f"bump/{RELEASE}-{version}"
        moved = time.monotonic()
        self.registry.move_alias(mlflowdemo.CANDIDATE, version)
        self.out(f"the training pipeline moved MLflow alias {mlflowdemo.CANDIDATE} to version {version}")
        pushed = wait_until(lambda: self.repo.branch_tip(branch), timeout=60, what=branch)
        after = time.monotonic() - moved
        self.out(f"modelrelease pushed {branch} {after:.1f} s later: {self.repo.subject(pushed)!r}")
        return branch, after

    def roll_out(self, version: str, timeout: float = 150.0) -> Outcome:
        """Propose `version` through the alias, check and merge its PR, and watch until the rollout
        settles; what it ended as."""
        branch, proposed_after = self.propose(version)
        self.repo.check_out(branch)
        self.pr_checks(branch)
        commit = self.repo.merge(branch, f"Merge pull request from {branch}: release model {version}")
        self.out(f"merged {commit[:12]}: the GitSource brings it to the cluster")
        started = time.monotonic()
        began: float | None = None
        shown, seen = "", ""
        approved = ""
        ended: dict[str, Any] | None = None  # the release when its rollout first showed how it ended
        while True:
            remaining = timeout - (time.monotonic() - started)
            try:  # until the cluster's next write to the release (polled every 0.1 s, with a deadline)
                release = wait_until(
                    functools.partial(self._changed_since, seen),
                    timeout=max(remaining, 0.0),
                    what=f"model {version}",
                )
            except TimeoutError:
                raise TimeoutError(
                    f"model {version} did not settle within {timeout:.0f}s (see {self.work}); "
                    f"last seen:\n{shown}"
                ) from None
            seen = release["metadata"]["resourceVersion"]
            events = [
                e
                for e in self.kube.objects("events", NAMESPACE, group="")
                if (e.get("involvedObject") or {}).get("name") == RELEASE
            ]
            view = ctl.render_status(release, events, datetime.now(UTC))
            if view != shown:
                self.out(("\x1b[H\x1b[2J" if self.live else "---\n") + view)
                shown = view
            status = releasestatus.ModelReleaseStatus.model_validate(release.get("status") or {})
            if began is None and status.canary_model_version == version:
                began = time.monotonic() - started
            if status.phase == releasestatus.Phase.AWAITING_APPROVAL and not approved:
                approved = self._press_approve(version)
            rolled_back = status.last_rollback is not None and status.last_rollback.model_version == version
            finished = status.phase in (releasestatus.Phase.ROLLED_BACK, releasestatus.Phase.SUCCEEDED)
            if ended is None and finished and (rolled_back or status.stable_model_version == version):
                ended = release
            told = not status.registry_owed  # the registry has heard how it ended
            if ctl.settled(release) and told and (status.stable_model_version == version or rolled_back):
                written = (
                    self._written_back(status, timeout - (time.monotonic() - started)) if rolled_back else ""
                )
                thread = self._slack_thread(version)
                by = next((a.by for a in status.approvals if "Slack" in a.by), "")
                return Outcome(
                    version,
                    status,
                    time.monotonic() - started,
                    commit,
                    branch,
                    proposed_after,
                    began,
                    written,
                    thread,
                    by,
                    ended or release,
                )

    def _press_approve(self, version: str) -> str:
        """What an approver does in Slack: press Approve under the request, once it is there."""
        assert self.slack is not None

        def request() -> slack.Message | None:
            return next((m for m in self._thread(version)[1:] if "waits for approval" in m.text), None)

        self.slack.wait_until(lambda: request() is not None, timeout=30)
        message = request()
        assert message is not None
        status, answer = self.slack.press_button(
            self.interactions, channel=SLACK_CHANNEL, ts=message.ts, action_id="approve", user="U0ADA"
        )
        self.out(f"ada pressed Approve in #{SLACK_CHANNEL}: {status} {answer}")
        return answer

    def _thread(self, version: str) -> list[slack.Message]:
        """The Slack thread of the rollout to `version` (its parent names the model it moves to)."""
        assert self.slack is not None
        parents = [
            m for m in list(self.slack.messages.values()) if m.thread_ts is None and f"→ {version}" in m.text
        ]
        return self.slack.thread(parents[-1].channel, parents[-1].ts) if parents else []

    def _slack_thread(self, version: str) -> str:
        """The thread once its last word (promoted, rolled back) has arrived."""
        assert self.slack is not None
        final = (":rocket:", ":leftwards_arrow_with_hook:")

        def ended() -> bool:
            return any(m.text.startswith(final) for m in self._thread(version)[1:])

        try:
            self.slack.wait_until(ended, timeout=30)
        except TimeoutError:
            return ""
        thread = self._thread(version)
        return self.slack.render_thread(thread[0].channel, thread[0].ts)

    def _written_back(self, status: releasestatus.ModelReleaseStatus, timeout: float) -> str:
        """Wait for the rollback's commit to be recorded; `git log -1` of the repository then."""

        def recorded() -> str | None:
            rollback = releasestatus.ModelReleaseStatus.model_validate(
                self._release().get("status") or {}
            ).last_rollback
            owed = rollback.git_write_back if rollback is not None else None
            return owed.commit if owed is not None and owed.commit else None

        if status.last_rollback is None or status.last_rollback.git_write_back is None:
            return ""
        wait_until(recorded, timeout=max(timeout, 5.0), what="the rollback's commit")
        return self.repo.last_commit()

    def _changed_since(self, resource_version: str) -> dict[str, Any] | None:
        release = self._release()
        return release if release["metadata"]["resourceVersion"] != resource_version else None

    def deploy_first(self, timeout: float = 60.0) -> None:
        self.apply(DEMO / "route.yaml")  # the platform team's route, applied outside the release repo
        self.repo = releaserepo.LocalReleaseRepo(self.work)
        first = self.repo.create_from_template(
            {f"{RELEASE}/release.yaml": DEMO / "release.yaml", f"{RELEASE}/route.yaml": DEMO / "route.yaml"},
            [DEMO / "analysis-template.yaml", DEMO / "shadow-template.yaml"],
        )
        self.kube.create(
            {
                "apiVersion": "modelrelease.dev/v1alpha1",
                "kind": "GitSource",
                "metadata": {"name": "releases", "namespace": NAMESPACE},
                "spec": {"url": self.repo.url, "branch": "main", "pollInterval": "2s", "prune": True},
            }
        )
        self.out(f"release repository {self.repo.url} at {first[:12]}, synced by GitSource 'releases'")

        def serving() -> bool:
            try:
                release = self._release()
            except KubeError as error:
                if error.code == 404:
                    return False  # not synced from Git yet
                raise
            return ctl.settled(release) and release.get("status", {}).get("phase") == "Succeeded"

        wait_until(serving, timeout=timeout, what="model 1 serving")


def summary(outcomes: Sequence[Outcome], registry: mlflowdemo.Registry | None = None) -> tuple[str, bool]:
    """The story in a few lines per rollout, and whether it ended as it should."""
    lines = ["", "Summary"]
    expected = {"2": releasestatus.RolloutOutcome.PROMOTED, "3": releasestatus.RolloutOutcome.ROLLED_BACK}
    ok = True
    for outcome in outcomes:
        record, want = outcome.record, expected.get(outcome.version)
        ended = record.outcome.value if record else "unknown"
        reason = record.reason if record else "-"
        lines.append(f"  model {outcome.version}: {ended} ({reason}) after {outcome.seconds:.0f} s")
        if outcome.proposed:
            lines.append(
                f"    proposed on {outcome.proposed} {outcome.proposed_after or 0:.1f} s after "
                f"MLflow alias {mlflowdemo.CANDIDATE} moved"
            )
        if outcome.started_after is not None:
            lines.append(
                f"    merged as {outcome.commit[:12]}; "
                f"the rollout started {outcome.started_after:.1f} s after the push"
            )
        if record is not None and record.mlflow_run:
            lines.append(f"    logged as MLflow run {record.mlflow_run} (experiment modelrelease)")
        elif want is not None:
            ok = False
            lines.append("    expected the rollout logged as an MLflow run")
        for run in (a for a in outcome.status.analysis if a.verdict != verdicts.Verdict.RUNNING):
            where = ("the shadow, " if run.template == SHADOW_TEMPLATE else "") + f"step {run.step_index}"
            lines.append(f"    analysis at {where}: {run.verdict.value}")
            for metric in run.metrics:
                needed = f"{1 / metric.alpha:.3g}" if metric.alpha else "-"
                power = "-" if metric.power is None else f"{metric.power:.0%}"
                # An agreement metric has no baseline: its value is the share that disagrees.
                effect = (
                    f"disagrees on {metric.canary:.2%}"
                    if metric.baseline is None and metric.canary is not None
                    else f"effect {_percent(metric.effect)}"
                )
                lines.append(
                    f"      {metric.name:<14} evidence {metric.evidence or 0:.3g} / {needed} to fail, "
                    f"power {power}, {effect}, canary requests {metric.canary_requests or 0:,}"
                )
        if want is not None and (record is None or record.outcome != want):
            ok = False
            lines.append(f"    expected {want.value}: the demo failed")
        if outcome.version == "3" and record is not None and record.reason != "AnalysisFailed":
            ok = False
            lines.append("    expected the judge to roll it back (AnalysisFailed)")
        shadow = next((a for a in outcome.status.analysis if a.template == SHADOW_TEMPLATE), None)
        if want is not None and (shadow is None or shadow.verdict == verdicts.Verdict.RUNNING):
            ok = False
            lines.append("    expected its shadow step judged first")
        if outcome.version == "2":
            if outcome.approved_in_slack:
                lines.append(f"    approved in Slack by {outcome.approved_in_slack} (an Approval object)")
            else:
                ok = False
                lines.append("    expected an approval pressed in Slack")
        if outcome.slack_thread:
            lines.append(f"    its Slack thread in #{SLACK_CHANNEL}:")
            lines += [f"      {line}" for line in outcome.slack_thread.splitlines()]
        elif want is not None:
            ok = False
            lines.append("    expected its Slack thread, ending with the outcome")
        if outcome.written_back:
            lines.append("    and wrote it back to Git (git log -1 in the release repository):")
            lines += [f"      {line}" for line in outcome.written_back.splitlines()]
        elif want == releasestatus.RolloutOutcome.ROLLED_BACK:
            ok = False
            lines.append("    expected the rollback's commit in the release repository")
    if registry is not None:
        production = registry.alias("production")
        tags = registry.tags("3")
        lines += [
            f"  MLflow registry {registry.uri}:",
            f"    alias production → version {production}",
            f"    alias {mlflowdemo.CANDIDATE} → version {registry.alias(mlflowdemo.CANDIDATE)}",
            f"    version 3: {mlflowdemo.OUTCOME_TAG}={tags.get(mlflowdemo.OUTCOME_TAG, '-')} "
            f"({tags.get(mlflowdemo.REASON_TAG, '-')})",
        ]
        if production != "2" or tags.get(mlflowdemo.OUTCOME_TAG) != "rolled_back":
            ok = False
            lines.append("    expected production on version 2 and version 3 tagged rolled_back")
    return "\n".join(lines), ok


def _sample_values(rows: Sequence[dict[str, Any]]) -> list[tuple[str, float]]:
    """An instant query's rows as (their labels' values joined, the value)."""
    return [("/".join(map(str, row["metric"].values())) or "total", float(row["value"][1])) for row in rows]


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1%}"


@contextlib.contextmanager
def running(work: pathlib.Path, *, out: Callable[[str], None] = print, live: bool = True) -> Iterator[Demo]:
    demo = Demo(work, out=out, live=live)
    try:
        demo.start(fleet.FleetScenario.load(DEMO / "scenario.yaml"))
        yield demo
    finally:
        demo.stop()


def story(demo: Demo) -> tuple[list[Outcome], str, bool]:
    demo.deploy_first()
    outcomes = [demo.roll_out("2"), demo.roll_out("3")]
    text, ok = summary(outcomes, demo.registry)
    return outcomes, text + "\n" + "\n".join(demo.explain_and_report(outcomes[-1].release)), ok


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=(__doc__ or "").split("\n")[0])
    parser.add_argument(
        "--work", type=pathlib.Path, default=ROOT / ".demo", help="where files go (default .demo/)"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep everything running afterwards, until Ctrl-C"
    )
    args = parser.parse_args(argv)
    try:
        with running(args.work) as demo:
            _, text, ok = story(demo)
            print(text)
            if args.keep:
                _explore(demo)
    except (TimeoutError, prometheus_process.PrometheusMissingError, cluster.ControlPlaneError) as error:
        print(f"demo failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0 if ok else 1


def _explore(demo: Demo) -> None:
    print(
        f"\nEverything keeps running. In another terminal:\n"
        f"  export KUBECONFIG={demo.kubeconfig}\n"
        f"  kubectl modelrelease list\n"
        f"  kubectl modelrelease status {RELEASE}\n"
        f"  kubectl modelrelease history {RELEASE}\n"
        f"  kubectl get gitsource releases -o yaml\n"
        f"  kubectl get approvals; kubectl get configmap modelrelease-slack-{RELEASE} -o yaml\n"
        f"  git -C {demo.repo.clone_path} log --stat\n"
        f"  kubectl get deploy,pods,httproute; kubectl get nodes (KWOK, 8 GPUs each)\n"
        f"  open {demo.prometheus.url} (e.g. sum by (revision) (rate(inference_requests_total[30s])))\n"
        f"Ctrl-C stops it all."
    )
    with contextlib.suppress(KeyboardInterrupt):
        signal.pause()


if __name__ == "__main__":
    raise SystemExit(main())
