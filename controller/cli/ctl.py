"""`kubectl modelrelease` (also `modelrelease ctl`): watch and steer rollouts as an SRE does.

kubectl finds the console script `kubectl-modelrelease` on PATH and passes it the arguments after
`kubectl modelrelease`; the plugin reads the kubeconfig itself, with the flags kubectl users expect
(`-n`, `--context`, `--kubeconfig`). Steering writes only what a person could write by hand: a
`modelrelease.dev/command-<name>` annotation with a fresh token (promote, abort, retry), or an
`Approval` object (approve, reject) — the RBAC to create Approvals is all an approver needs.
Every error is one line that says what to do; the exit code is 1.
"""

from __future__ import annotations

import argparse
import getpass
import os
import pathlib
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from analysis import verdicts
from controller import errors
from controller.adapters import kubeapi
from controller.adapters.prometheus import prometheus_source
from controller.adapters.releases import release_path
from controller.cli import explain, gitstate, pipes, reporthtml, textformat
from controller.cli import report as report_
from controller.domain import planning
from controller.resources import commands, meta, modelrelease, releasestatus

Obj = dict[str, Any]
SETTLED = {releasestatus.Phase.SUCCEEDED, releasestatus.Phase.ROLLED_BACK, releasestatus.Phase.FAILED}


class CtlError(Exception):
    """A one-line problem for the user, naming what to do."""


# ---- the cluster ----------------------------------------------------------------------------------


class Cluster:
    def __init__(self, kubeconfig: str | None, context: str | None, namespace: str | None) -> None:
        try:
            self.api = kubeapi.KubeApi.from_kubeconfig(kubeconfig, context=context)
        except errors.ConfigError as error:
            raise CtlError(
                f"no cluster to talk to ({error}); pass --kubeconfig or --context, or set KUBECONFIG"
            ) from None
        self.namespace = namespace or _context_namespace(kubeconfig, context)
        self.user = _context_user(kubeconfig, context)

    def git_source(self, release: Obj) -> Obj | None:
        """The GitSource that applied `release`, if one did and it may be read."""
        name = gitstate.source_of(release)
        if name is None:
            return None
        path = kubeapi.build_path(meta.API_VERSION, "gitsources", self.namespace, name)
        try:
            return self.api.get(path)
        except errors.ModelReleaseError:
            return None  # gone, or not ours to read: the release's own status still says the rest

    def whoami(self) -> str:
        """The user name the API server authenticates this client as (a SelfSubjectReview, what
        `kubectl auth whoami` asks); the kubeconfig's user name where the server has no such API."""
        review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        try:
            answer = self.api.create("/apis/authentication.k8s.io/v1/selfsubjectreviews", review)
        except (errors.NotFoundError, errors.InvalidError):
            return self.user
        return str(((answer.get("status") or {}).get("userInfo") or {}).get("username") or self.user)

    def call(self, action: Callable[[], Obj], what: str) -> Obj:
        try:
            return action()
        except errors.NotFoundError:
            raise CtlError(
                f"{what}: not found in namespace {self.namespace} "
                f"(`kubectl modelrelease list -n {self.namespace}` shows the releases there)"
            ) from None
        except errors.ForbiddenError as error:
            raise CtlError(f"{what}: forbidden ({error}); ask for the RBAC this needs") from None
        except errors.UnavailableError as error:
            raise CtlError(
                f"{what}: cannot reach the cluster at {self.api.configuration.host} ({error}); "
                "check --kubeconfig and --context"
            ) from None
        except errors.ModelReleaseError as error:
            raise CtlError(f"{what}: {error}") from None

    def release(self, name: str) -> Obj:
        return self.call(lambda: self.api.get(release_path(self.namespace, name)), f"ModelRelease {name}")

    def releases(self, all_namespaces: bool) -> list[Obj]:
        namespace = None if all_namespaces else self.namespace
        path = kubeapi.build_path(meta.API_VERSION, "modelreleases", namespace)
        return list(self.call(lambda: self.api.get(path), "ModelReleases").get("items", []))

    def events(self, name: str) -> list[Obj]:
        path = kubeapi.build_path("v1", "events", self.namespace)
        query = {"fieldSelector": f"involvedObject.name={name}"}
        items = self.call(lambda: self.api.get(path, query), "Events").get("items", [])
        return [e for e in items if e.get("involvedObject", {}).get("name") == name]

    def watch_release(self, name: str, resource_version: str) -> Iterator[Obj]:
        """The release each time it changes (a watch, not a poll); ends when the server closes it."""
        path = kubeapi.build_path(meta.API_VERSION, "modelreleases", self.namespace)
        query = {
            "watch": "1",
            "fieldSelector": f"metadata.name={name}",
            "resourceVersion": resource_version,
            "timeoutSeconds": "300",
        }
        try:
            for event in self.api.stream(path, query):
                if event.get("type") in ("ADDED", "MODIFIED"):
                    yield event["object"]
        except errors.ModelReleaseError as error:
            raise CtlError(f"watching ModelRelease {name}: {error}") from None


def _context_namespace(kubeconfig: str | None, context: str | None) -> str:
    return str(kubeapi.kubeconfig_context(kubeconfig, context).get("namespace") or "default")


def _context_user(kubeconfig: str | None, context: str | None) -> str:
    return str(kubeapi.kubeconfig_context(kubeconfig, context).get("user") or getpass.getuser())


# ---- reading a release ----------------------------------------------------------------------------


def _status(release: Obj) -> releasestatus.ModelReleaseStatus:
    return releasestatus.ModelReleaseStatus.model_validate(release.get("status") or {})


def _age(timestamp: str | None, now: datetime) -> str:
    if not timestamp:
        return "-"
    return textformat.duration(
        (now - datetime.fromisoformat(timestamp.replace("Z", "+00:00"))).total_seconds()
    )


def render_list(releases: Sequence[Obj], now: datetime, all_namespaces: bool = False) -> str:
    header = ["NAME", "PHASE", "STEP", "WEIGHT", "STABLE", "CANARY", "VERDICT", "AGE"]
    rows = [["NAMESPACE", *header] if all_namespaces else header]
    for release in sorted(
        releases, key=lambda r: (r["metadata"].get("namespace", ""), r["metadata"]["name"])
    ):
        st = _status(release)
        last = st.analysis[-1].verdict.value if st.analysis else "-"
        row = [
            release["metadata"]["name"],
            st.phase.value,
            "-" if st.current_step_index is None else str(st.current_step_index),
            f"{st.canary_weight}%",
            st.stable_model_version or "-",
            st.canary_model_version or "-",
            last,
            _age(release["metadata"].get("creationTimestamp"), now),
        ]
        rows.append([release["metadata"].get("namespace", ""), *row] if all_namespaces else row)
    return textformat.table(rows)


def _number(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.1%}" if percent else f"{value:.4g}"


def _metric_rows(metrics: Sequence[verdicts.MetricResult]) -> list[list[str]]:
    rows = [
        [
            "METRIC",
            "BASELINE",
            "CANARY",
            "EFFECT [CI]",
            "EVIDENCE / NEEDED",
            "POWER",
            "REQUESTS C/B",
            "DECISION",
        ]
    ]
    for m in metrics:
        ci = f"[{_number(m.ci_low, True)}, {_number(m.ci_high, True)}]"
        needed = "-" if not m.alpha else f"{1 / m.alpha:.3g}"
        counts = ("-" if n is None else str(n) for n in (m.canary_requests, m.baseline_requests))
        requests = "/".join(counts)
        rows.append(
            [
                m.name,
                _number(m.baseline),
                _number(m.canary),
                f"{_number(m.effect, True)} {ci}",
                f"{_number(m.evidence)} / {needed}",
                "-" if m.power is None else f"{m.power:.0%}",
                requests,
                m.verdict.value,
            ]
        )
    return rows


def render_status(release: Obj, events: Sequence[Obj], now: datetime, source: Obj | None = None) -> str:
    name = release["metadata"]["name"]
    spec = modelrelease.ModelReleaseSpec.model_validate(release["spec"])
    st = _status(release)
    lines = [
        f"ModelRelease {release['metadata'].get('namespace', '')}/{name}: {st.phase.value}"
        + (f" ({st.reason})" if st.reason else "")
    ]
    if st.message:
        lines.append(f"  {st.message}")
    lines.append(
        f"  stable: model {st.stable_model_version or '-'} (revision {st.stable_revision or '-'})"
        f"   canary: model {st.canary_model_version or '-'} (revision {st.canary_revision or '-'})"
        f"   weight {st.canary_weight}%"
    )
    owed = st.last_rollback.git_write_back if st.last_rollback is not None else None
    if owed is not None:
        git_line = (
            owed.outcome
            if owed.settled
            else f"owed: {owed.model_name} back to version {owed.restore_version}"
        )
        lines.append(f"  git write-back of the last rollback: {git_line}")
    proposal = st.proposal
    if proposal is not None:
        said = proposal.outcome if proposal.commit else "owed: not yet seen in Git"
        if proposal.held:
            said = f"held: it {proposal.held}"
        lines.append(f"  alias {proposal.alias} moved to version {proposal.version}, proposed in Git: {said}")
    lines += [f"  {line}" for line in gitstate.describe(release, source)]
    # The plan the controller walks: at the release's size now (an HPA may have resized it).
    footprint = planning.StableFootprint(
        replicas=spec.serving.replicas,
        gpus_per_replica=st.stable_gpus_per_replica or spec.gpus_per_replica,
    )
    plan = planning.plan_rollout(spec, footprint)
    lines.append("")
    if isinstance(plan, planning.Refusal):
        lines.append(f"  plan refused ({plan.reason}): {plan.message}")
    else:
        rows = [["", "STEP", "WEIGHT", "CANARY PODS", "STABLE PODS", "GPUS"]]
        gpus = spec.gpus_per_replica
        for index, step in enumerate((*plan.steps, plan.promotion)):
            rows.append(
                [
                    _mark(st, index),
                    step.label,
                    step.describe_traffic(),
                    str(step.canary_replicas),
                    str(step.stable_replicas),
                    str(step.canary_replicas * gpus + step.stable_replicas * footprint.gpus_per_replica),
                ]
            )
        lines += ["  " + line for line in textformat.table(rows).splitlines()]
    if st.analysis:
        record = st.analysis[-1]
        where = (
            "background"
            if record.step_index == releasestatus.BACKGROUND_STEP
            else f"step {record.step_index}"
        )
        lines += ["", f"  analysis {record.run} ({record.template}, {where}): {record.verdict.value}"]
        if record.rule:
            lines.append(f"    {record.rule}")
        if record.metrics:
            lines += ["    " + line for line in textformat.table(_metric_rows(record.metrics)).splitlines()]
    if st.approvals:
        lines += ["", "  approvals:"]
        for approval in st.approvals:
            lines.append(
                f"    step {approval.step_index}: {approval.decision.value} by {approval.by} "
                f"via {approval.via} ({_age(approval.at.isoformat(), now)} ago)"
            )
    if st.slack is not None:
        lines += [
            "",
            f"  slack: {st.slack.channel}, thread {st.slack.thread_ts} (rollout {st.slack.rollout})",
        ]
    if st.conditions:
        lines += ["", "  conditions:"]
        for condition in st.conditions:
            lines.append(
                f"    {condition.type}={condition.status} {condition.reason or ''}: {condition.message or ''}"
            )
    recent = sorted(events, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")[-8:]
    if recent:
        lines += ["", "  events:"]
        for event in recent:
            when = _age(event.get("lastTimestamp") or event.get("eventTime"), now)
            kind, reason, message = (event.get(k, "") for k in ("type", "reason", "message"))
            lines.append(f"    {when:>4} {kind:<8} {reason}: {message}")
    return "\n".join(lines)


def render_history(release: Obj, now: datetime) -> str:
    """Past rollouts, oldest first, and the one under way."""
    st = _status(release)
    rows = [["REVISION", "MODEL", "FROM", "ATTEMPT", "OUTCOME", "REASON", "ENDED", "TOOK"]]
    for record in st.history:
        took = "-"
        if record.started_at is not None:
            took = _age(record.started_at.isoformat(), record.ended_at)
        rows.append(
            [
                record.revision,
                record.model_version or "-",
                record.from_model_version or "-",
                str(record.attempt),
                record.outcome.value,
                record.reason,
                f"{_age(record.ended_at.isoformat(), now)} ago",
                took,
            ]
        )
    if st.canary_revision is not None:
        started = st.rollout_started_at.isoformat() if st.rollout_started_at else None
        rows.append(
            [
                st.canary_revision,
                st.canary_model_version or "-",
                st.stable_model_version or "-",
                str(st.attempt),
                f"({st.phase.value})",
                st.reason or "-",
                "-",
                _age(started, now),
            ]
        )
    if len(rows) == 1:
        return f"ModelRelease {release['metadata']['name']} has no rollout yet"
    runs = [f"  {r.revision}.{r.attempt}: {r.mlflow_run}" for r in st.history if r.mlflow_run]
    return textformat.table(rows) + (
        "\n\nMLflow runs (experiment modelrelease):\n" + "\n".join(runs) if runs else ""
    )


def _mark(st: releasestatus.ModelReleaseStatus, index: int) -> str:
    """✓ done, ▶ current, ✗ where it failed, · pending."""
    current = st.current_step_index
    if st.phase == releasestatus.Phase.SUCCEEDED:
        return "✓"
    if current is None:
        return "·"
    if index < current:
        return "✓"
    if index == current:
        failed = st.phase in (releasestatus.Phase.ROLLED_BACK, releasestatus.Phase.FAILED)
        return "✗" if failed else "▶"
    return "·"


# ---- commands -------------------------------------------------------------------------------------


def _steer(cluster: Cluster, name: str, command: commands.Command) -> str:
    cluster.release(name)  # a clear error for a release that does not exist
    token = f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:6]}"
    annotation = f"{meta.GROUP}/command-{command.value}"
    body = {"metadata": {"annotations": {annotation: token}}}
    cluster.call(
        lambda: cluster.api.merge_patch(release_path(cluster.namespace, name), body), f"ModelRelease {name}"
    )
    return f"modelrelease/{name}: {command.value} requested (token {token})"


def _decide(
    cluster: Cluster, name: str, decision: releasestatus.ApprovalDecision, step: int | None, reason: str
) -> str:
    st = _status(cluster.release(name))
    if st.canary_revision is None:
        raise CtlError(f"ModelRelease {name} has no rollout waiting for a decision (phase {st.phase.value})")
    index = step if step is not None else st.current_step_index
    if index is None:
        raise CtlError(f"ModelRelease {name} is at no step; pass --step N")
    user = cluster.call(lambda: {"user": cluster.whoami()}, "who am I")["user"]
    body = {
        "apiVersion": meta.API_VERSION,
        "kind": "Approval",
        "metadata": {"generateName": f"{name}-", "namespace": cluster.namespace},
        "spec": {
            "release": name,
            "revision": st.canary_revision,
            "step": index,
            "decision": decision.value,
            "by": user,
            "identity": f"kubernetes:{user}",  # what deploy/'s admission policy checks against the caller
            "reason": reason,
        },
    }
    path = kubeapi.build_path(meta.API_VERSION, "approvals", cluster.namespace)
    created = cluster.call(lambda: cluster.api.create(path, body), f"Approval for {name}")
    return f"approval/{created['metadata']['name']}: {decision.value} step {index} of {name} as {user}"


# ---- entry ----------------------------------------------------------------------------------------


def _cluster_flags(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument("-n", "--namespace", default=default, help="namespace (default: the context's)")
    parser.add_argument("--context", default=default, help="kubeconfig context to use")
    parser.add_argument("--kubeconfig", default=default, help="kubeconfig file (default: $KUBECONFIG)")


def build_parser(prog: str = "kubectl modelrelease") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=(__doc__ or "").split("\n")[0])
    _cluster_flags(parser, None)
    # The same flags after the command (`status NAME -n ml`), without overriding ones given before it.
    flags = argparse.ArgumentParser(add_help=False)
    _cluster_flags(flags, argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=text, parents=[flags])

    listing = command("list", "all releases: phase, step, weight, versions, last verdict, age")
    listing.add_argument("-A", "--all-namespaces", action="store_true")
    status = command("status", "steps, arms, the current analysis, approvals, events")
    status.add_argument("name")
    status.add_argument(
        "-w", "--watch", action="store_true", help="redraw as it changes; exit when it settles"
    )
    for verb, text in (("abort", "roll the canary back"), ("retry", "start a rolled-back rollout again")):
        command(verb, text).add_argument("name")
    promote = command("promote", "skip the current pause, approval or analysis")
    promote.add_argument("name")
    promote.add_argument("--full", action="store_true", help="skip every remaining step")
    command("history", "past rollouts: revision, versions, outcome, reason, when").add_argument("name")
    command(
        "explain", "in one paragraph: why the release is where it is, and what it waits for"
    ).add_argument("name")
    report = command(
        "report", "per analysis: evidence, effect and traffic over time, replayed from Prometheus"
    )
    report.add_argument("name")
    report.add_argument(
        "--prometheus",
        default=os.environ.get("MODELRELEASE_PROMETHEUS"),
        help="Prometheus base URL the controller judges on (default: $MODELRELEASE_PROMETHEUS)",
    )
    report.add_argument("--prometheus-token-file", help="file holding a bearer token for Prometheus")
    report.add_argument("--html", metavar="FILE", help="also write a self-contained HTML page with plots")
    for verb in ("approve", "reject"):
        gate = command(verb, f"{verb} the current approval step (creates an Approval)")
        gate.add_argument("name")
        gate.add_argument("--step", type=int, help="the step index (default: the current step)")
        gate.add_argument("--reason", default="", help="why (kept in the audit record)")
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "kubectl modelrelease") -> int:
    return pipes.quiet_on_closed_pipe(lambda: _main(argv, prog))


def _main(argv: Sequence[str] | None, prog: str) -> int:
    args = build_parser(prog).parse_args(argv)
    try:
        cluster = Cluster(args.kubeconfig, args.context, args.namespace)
        print(_run(cluster, args))
    except CtlError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def _run(cluster: Cluster, args: argparse.Namespace) -> str:
    now = datetime.now(UTC)
    match args.command:
        case "list":
            return render_list(cluster.releases(args.all_namespaces), now, args.all_namespaces)
        case "status":
            release = cluster.release(args.name)
            if not args.watch:
                return render_status(release, cluster.events(args.name), now, cluster.git_source(release))
            return _watch(cluster, args.name, release)
        case "history":
            return render_history(cluster.release(args.name), now)
        case "explain":
            release = cluster.release(args.name)
            return explain.explain(release, now, cluster.git_source(release))
        case "report":
            return _report(cluster, args, now)
        case "promote":
            command = commands.Command.PROMOTE_FULL if args.full else commands.Command.PROMOTE
            return _steer(cluster, args.name, command)
        case "abort":
            return _steer(cluster, args.name, commands.Command.ABORT)
        case "retry":
            return _steer(cluster, args.name, commands.Command.RETRY)
        case "approve" | "reject":
            decision = (
                releasestatus.ApprovalDecision.APPROVE
                if args.command == "approve"
                else releasestatus.ApprovalDecision.REJECT
            )
            return _decide(cluster, args.name, decision, args.step, args.reason)
    raise CtlError(f"unknown command {args.command}")


def _report(cluster: Cluster, args: argparse.Namespace, now: datetime) -> str:
    if not args.prometheus:
        raise CtlError(
            "report needs --prometheus URL (or $MODELRELEASE_PROMETHEUS): it replays the judge on it"
        )
    release = cluster.release(args.name)

    def template(name: str) -> Obj | None:
        path = kubeapi.build_path(meta.API_VERSION, "analysistemplates", cluster.namespace, name)
        try:
            return cluster.api.get(path)
        except errors.NotFoundError:
            return None

    token = pathlib.Path(args.prometheus_token_file) if args.prometheus_token_file else None
    try:
        with prometheus_source.PrometheusSource(args.prometheus, token_file=token) as source:
            built = report_.build_report(release, template, source, now)
    except prometheus_source.SourceError as error:
        raise CtlError(str(error)) from None
    text = report_.render_text(built)
    if args.html:
        pathlib.Path(args.html).write_text(reporthtml.render_html(built), encoding="utf-8")
        text += f"\n\nwrote {args.html}"
    return text


def settled(release: Obj) -> bool:
    """The controller has seen the current spec and the rollout is over."""
    st = _status(release)
    return st.observed_generation == release["metadata"].get("generation") and st.phase in SETTLED


def _watch(cluster: Cluster, name: str, release: Obj) -> str:
    """Redraw on every change of the release until its rollout settles; returns the last view.

    One watch stays open across redraws; when the server ends it, the release is read afresh and
    watched again from there.
    """
    interactive = sys.stdout.isatty()
    changes: Iterator[Obj] = iter(())
    shown = ""
    while True:
        view = render_status(release, cluster.events(name), datetime.now(UTC))
        if settled(release):
            return view
        if view != shown:
            print(("\x1b[H\x1b[2J" if interactive else "---\n") + view, flush=True)
            shown = view
        changed = next(changes, None)
        if changed is None:  # the first time, or the server closed the watch
            release = cluster.release(name)
            changes = cluster.watch_release(name, release["metadata"].get("resourceVersion", ""))
        else:
            release = changed
