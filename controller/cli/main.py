"""`modelrelease`: CRDs, manifest checks, plans, judging; run the controller."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from controller import crdgen, releasetree
from controller.adapters.git import touched
from controller.cli import ctl, judging, pipes, planview, validation
from controller.resources import kinds
from controller.runtime import settings as settings_defaults

if TYPE_CHECKING:
    from controller.runtime.operator import AnalysisFactory

DEFAULT_CRD_DIR = Path("crds")
# `modelrelease run`'s defaults are the settings' own: said once, in controller/runtime/settings.py.
DEFAULTS = settings_defaults.RuntimeSettings()


def main(argv: Sequence[str] | None = None) -> int:
    return pipes.quiet_on_closed_pipe(lambda: _main(argv))


def _main(argv: Sequence[str] | None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    if given[:1] == ["ctl"]:  # everything after it is the plugin's, --help included
        return ctl.main(given[1:], prog="modelrelease ctl")
    parser = build_parser()
    args = parser.parse_args(given)
    code: int = args.handler(args)
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelrelease", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    crds = commands.add_parser("crds", help="write the CRD YAML generated from the models")
    crds.add_argument("--out", type=Path, default=DEFAULT_CRD_DIR, help="folder of CRD files (default: crds)")
    crds.add_argument("--check", action="store_true", help="only compare; exit 1 when the files differ")
    crds.set_defaults(handler=_crds)

    validate = commands.add_parser(
        "validate", help="check release manifests (files or folders); every problem with file:line"
    )
    validate.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    validate.add_argument("--format", choices=("text", "json"), default="text")
    validate.add_argument(
        "--registry",
        metavar="URI",
        help="also check each release's model in this MLflow registry: it exists, is READY and carries "
        "its requireTags (token from MLFLOW_TRACKING_TOKEN)",
    )
    validate.set_defaults(handler=_validate)

    # Listed for --help; main() hands `ctl …` to the plugin before this parser sees it.
    commands.add_parser("ctl", help="watch and steer rollouts (the same as `kubectl modelrelease`)")

    plan = commands.add_parser("plan", help="show the replica plan and GPU cost of each ModelRelease")
    plan.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    plan.add_argument(
        "--base",
        metavar="REF",
        help="only the releases changed against this Git ref (their file, or an AnalysisTemplate they use)",
    )
    plan.add_argument("--format", choices=("text", "markdown"), default="text")
    plan.add_argument(
        "--stable-replicas", type=int, help="replicas of the running stable (default: as the spec)"
    )
    plan.add_argument("--stable-gpus", type=int, help="GPUs per stable replica (default: as the spec)")
    plan.add_argument(
        "--expected-rps",
        type=float,
        help="expected requests/s of the release: show how long each analysis step should take "
        "(its AnalysisTemplate must be among the files)",
    )
    plan.add_argument(
        "--expected-error-rate",
        type=float,
        default=0.005,
        help="the stable's error rate, for the expected step length (default 0.005)",
    )
    plan.set_defaults(handler=_plan)

    run = commands.add_parser("run", help="run the controller against the current kubeconfig")
    run.add_argument(
        "--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)"
    )
    run.add_argument(
        "--namespace", action="append", default=[], help="watch only this namespace (repeatable)"
    )
    run.add_argument(
        "--selector",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="handle only releases with this label, to shard a large fleet (repeatable)",
    )
    peering = run.add_mutually_exclusive_group()
    peering.add_argument(
        "--standalone",
        action="store_true",
        help="no coordination: this process always acts (run exactly one such process)",
    )
    peering.add_argument(
        "--peering",
        default=settings_defaults.PEERING_NAME,
        help="Kopf peering object shared by the replicas; only the highest-priority one acts; created "
        f"when missing (default: {settings_defaults.PEERING_NAME})",
    )
    run.add_argument(
        "--priority",
        type=int,
        help="peering priority, higher acts (default: a random one per process, so replicas never tie)",
    )
    run.add_argument(
        "--peering-lifetime",
        type=float,
        default=DEFAULTS.peering_lifetime,
        help="seconds a silent peer counts as alive",
    )
    run.add_argument(
        "--poll-interval",
        type=float,
        default=DEFAULTS.poll_interval.total_seconds(),
        help="longest seconds between reconciles",
    )
    run.add_argument(
        "--request-timeout", type=float, default=DEFAULTS.request_timeout, help="seconds per API request"
    )
    run.add_argument(
        "--workers",
        type=int,
        default=DEFAULTS.workers,
        help="reconciles run at once, each in a thread waiting on the API server or Prometheus "
        f"(default {DEFAULTS.workers}; docs/operations.md sizes it)",
    )
    run.add_argument(
        "--analysis",
        choices=("none", "prometheus"),
        default=DEFAULTS.analysis,
        help="analysis backend: prometheus (the judge; needs --prometheus) or none (every analysis "
        "ends INCONCLUSIVE at its maxDuration)",
    )
    run.add_argument("--prometheus", help="Prometheus base URL for --analysis prometheus")
    run.add_argument(
        "--prometheus-token-file",
        help="file holding a bearer token for Prometheus (re-read on every query; e.g. a projected token)",
    )
    run.add_argument(
        "--webhook-port",
        "--git-webhook-port",
        dest="webhook_port",
        type=int,
        help="serve every inbound callback on this one port (0: any free): POST /hooks/git (Git pushes, "
        "X-Hub-Signature-256), with --mlflow-webhook-secret-file POST /hooks/mlflow, and with "
        "--slack-signing-secret-file Slack's interactivity URL POST /slack/interactions",
    )
    run.add_argument(
        "--webhook-host",
        "--git-webhook-host",
        dest="webhook_host",
        default=DEFAULTS.webhook_host,
        help="their address",
    )
    run.add_argument("--git-cache-dir", help="folder for repository clones (default: the temp folder)")
    run.add_argument(
        "--metrics-port",
        type=int,
        help="serve the controller's metrics on /metrics on this port (0: any free)",
    )
    run.add_argument("--metrics-host", default=DEFAULTS.metrics_host, help="address of /metrics")
    run.add_argument(
        "--health-port",
        type=int,
        help="serve Kopf's liveness endpoint /healthz on this port, for the Deployment's probes",
    )
    registry = run.add_argument_group("model registry")
    registry.add_argument(
        "--registry",
        choices=("pinned", "mlflow"),
        default=DEFAULTS.registry,
        help="mlflow: resolve, gate and promote versions in an MLflow registry; pinned (default): take "
        "spec.model.version as given",
    )
    registry.add_argument("--mlflow-tracking-uri", help="the MLflow server, e.g. http://mlflow:5000")
    registry.add_argument("--mlflow-token-file", help="file holding a bearer token for the MLflow server")
    registry.add_argument(
        "--mlflow-webhook-secret-file",
        help="file holding the secret of the MLflow registry webhooks (model_version_alias.created) "
        "delivered to /hooks/mlflow on --webhook-port",
    )
    slack = run.add_argument_group("Slack (docs/slack.md)")
    slack.add_argument(
        "--slack-token-file", help="file holding the bot token (xoxb-…), e.g. mounted from a Secret"
    )
    slack.add_argument(
        "--slack-signing-secret-file",
        help="file holding the app's signing secret: checks the presses Slack posts to its "
        "interactivity URL, POST /slack/interactions on --webhook-port",
    )
    for moved in ("--slack-interactions-port", "--slack-interactions-host"):
        slack.add_argument(moved, action=_Moved, help=argparse.SUPPRESS, default=argparse.SUPPRESS)
    slack.add_argument(
        "--slack-app-token-file",
        help="file holding an app-level token (xapp-…): receive presses over Socket Mode, no ingress needed",
    )
    slack.add_argument(
        "--slack-retry-max",
        type=float,
        default=DEFAULTS.slack_retry_max,
        help="longest seconds between two attempts of a message Slack did not take "
        f"(default {DEFAULTS.slack_retry_max:g})",
    )
    slack.add_argument(
        "--slack-api-url",
        default=DEFAULTS.slack_api_url,
        help=f"Slack Web API base (default {DEFAULTS.slack_api_url})",
    )
    run.set_defaults(handler=run_controller)
    run.epilog = (
        f"Every option can also come from the environment, e.g. {ENV_PREFIX}PROMETHEUS for --prometheus "
        "(repeatable ones comma-separated, switches as true/false): deploy/ sets them from a ConfigMap. "
        "A flag on the command line wins."
    )
    apply_environment(run, os.environ)

    judging.add_commands(commands)

    return parser


ENV_PREFIX = "MODELRELEASE_"


class _Moved(argparse.Action):
    """An option that no longer exists, refused with where its job went."""

    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        parser.error(
            f"{self.option_strings[0]} is gone: Slack's interactivity URL (POST /slack/interactions) is "
            "served with the other inbound callbacks on --webhook-port (and --webhook-host)"
        )


def apply_environment(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    """Defaults for `parser`'s options from MODELRELEASE_<OPTION> variables; a bad value exits naming
    the variable, as a bad flag would."""
    defaults: dict[str, object] = {}
    for action in parser._actions:
        if not any(o.startswith("--") for o in action.option_strings) or action.dest == "help":
            continue
        variable = ENV_PREFIX + action.dest.upper()
        raw = environ.get(variable)
        if raw is None or raw == "":
            continue
        if isinstance(action, _Moved):
            action(parser)
        try:
            defaults[action.dest] = _convert(action, raw)
        except ValueError as exc:
            parser.error(f"{variable}={raw!r}: {exc}")
    parser.set_defaults(**defaults)


def _convert(action: argparse.Action, raw: str) -> object:
    if isinstance(action, argparse._StoreTrueAction):
        if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError("expected true or false")
        return raw.lower() in ("true", "1", "yes")
    convert = action.type if callable(action.type) else str
    if isinstance(action, argparse._AppendAction):
        return [convert(part.strip()) for part in raw.split(",") if part.strip()]
    value = convert(raw)
    if action.choices is not None and value not in action.choices:
        raise ValueError(f"expected one of {', '.join(map(str, action.choices))}")
    return value


def run_controller(args: argparse.Namespace, analysis_factory: AnalysisFactory | None = None) -> int:
    """`modelrelease run`: the settings from `args`, checked, and the controller run until stopped.
    `analysis_factory` replaces the judge only for a caller in Python (the test rig); no flag can."""
    from controller.runtime import operator, settings

    try:
        config = settings.RuntimeSettings.from_options(vars(args))
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        operator.run(config, analysis_factory or operator.build_analysis)
    except operator.StartupError as exc:
        print(f"modelrelease run: {exc}", file=sys.stderr)
        return 2
    return 0


def _crds(args: argparse.Namespace) -> int:
    if args.check:
        problems = crdgen.diff_crds(args.out)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print(
                "the CRDs differ from the models; run `modelrelease crds` and commit the result",
                file=sys.stderr,
            )
            return 1
        print(f"{args.out}: CRDs match the models")
        return 0
    for path in crdgen.write_crds(args.out):
        print(f"wrote {path}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    tree = releasetree.read_paths(args.paths)
    if args.registry:
        from controller.adapters.mlflow import mlflow_registry  # MLflow is a heavy import: only when asked
        from controller.cli import registrycheck

        bad = tree.bad_files
        valid = [m for m in tree.manifests if m.source not in bad]
        tree.problems += registrycheck.check(valid, mlflow_registry.connect(args.registry))
    if args.format == "json":
        print(json.dumps(validation.report(tree), indent=2))
    else:
        for problem in tree.problems:
            print(problem, file=sys.stderr)
        bad = tree.bad_files
        for manifest in tree.manifests:
            if manifest.source not in bad:
                resource = manifest.resource
                assert isinstance(resource, kinds.RESOURCE_TYPES)
                print(f"{manifest.source}:{manifest.line}: {resource.kind} {resource.metadata.name}: valid")
        files = len(tree.files)
        verdict = f"{len(tree.problems)} problem(s)" if tree.problems else "valid"
        print(f"{files} file(s), {len(tree.manifests)} resource(s): {verdict}", file=sys.stderr)
    return 1 if tree.problems else 0


def _plan(args: argparse.Namespace) -> int:
    # References between files are `validate`'s to check; a plan needs each release to parse.
    tree = releasetree.read_paths(args.paths, cross=False)
    for problem in tree.problems:
        print(problem, file=sys.stderr)
    loaded = [touched.Change(m, why="", before=None) for m in tree.manifests]
    shown = tree.problems
    if args.base is not None:
        try:
            loaded = touched.changed_releases(tree, args.paths, args.base)
            shown = touched.in_changed_files(tree.problems, args.paths, args.base)
        except touched.BaseError as error:
            print(f"--base {args.base}: {error}", file=sys.stderr)
            return 2
    options = planview.Options(
        stable_replicas=args.stable_replicas,
        stable_gpus=args.stable_gpus,
        expected_rps=args.expected_rps,
        expected_error_rate=args.expected_error_rate,
    )
    plans = planview.build(loaded, tree.templates(), options, tree)
    if args.format == "markdown":
        print(planview.render_markdown(plans, against=args.base, problems=shown))
    else:
        print(planview.render_text(plans) or "no ModelRelease to plan")
    return 1 if tree.problems or any(p.refused for p in plans) else 0


if __name__ == "__main__":
    raise SystemExit(main())
