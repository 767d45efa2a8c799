"""`modelrelease judge` (offline, from a JSON file) and `modelrelease analyze` (live Prometheus).

Both print the judgement as JSON on stdout and exit 0 whatever the verdict; bad input exits 2
with a message naming the field, an unreachable Prometheus exits 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from analysis import judge, readings, schema, verdicts
from controller import manifests
from controller.resources import kinds


def add_commands(commands: Any) -> None:
    judge_cmd = commands.add_parser(
        "judge", help="judge canary against baseline from a JSON file of per-interval observations"
    )
    judge_cmd.add_argument("--input", type=Path, required=True, help="JSON file (format: docs/analysis.md)")
    judge_cmd.set_defaults(handler=_judge)

    analyze = commands.add_parser("analyze", help="judge a release's canary from a live Prometheus")
    analyze.add_argument(
        "--prometheus", required=True, help="Prometheus base URL, e.g. http://127.0.0.1:9090"
    )
    analyze.add_argument("--token-file", type=Path, help="file holding a bearer token for Prometheus")
    analyze.add_argument("--template", type=Path, required=True, help="AnalysisTemplate manifest (YAML)")
    analyze.add_argument("--namespace", required=True)
    analyze.add_argument("--release", required=True)
    analyze.add_argument("--canary", required=True, metavar="REVISION", help="canary revision label")
    analyze.add_argument("--baseline", required=True, metavar="REVISION", help="baseline revision label")
    analyze.add_argument("--canary-track", default="canary")
    analyze.add_argument(
        "--baseline-track", default="stable", help="stable, or baseline for a fresh baseline"
    )
    analyze.add_argument("--model", default="", help="value of {{model}} in the queries")
    analyze.add_argument("--start", required=True, help="RFC 3339 time or epoch seconds: analysis start")
    analyze.add_argument("--end", help="RFC 3339 time or epoch seconds (default: now)")
    analyze.add_argument("--warmup", default="0s", help="left out after a pod starts or restarts, e.g. 60s")
    analyze.add_argument(
        "--final", action="store_true", help="the run ends at --end: undecided becomes Inconclusive"
    )
    analyze.set_defaults(handler=_analyze)


def _print(summary: verdicts.AnalysisSummary) -> int:
    print(json.dumps(summary.to_manifest(), indent=2, ensure_ascii=False))
    return 0


def _fail(message: str, code: int = 2) -> int:
    print(message, file=sys.stderr)
    return code


def _judge(args: argparse.Namespace) -> int:
    source = str(args.input)
    try:
        document = yaml.safe_load(args.input.read_text())
    except OSError as error:
        return _fail(f"{source}: {error.strerror}")
    except yaml.YAMLError as error:
        return _fail(f"{source}: not JSON: {error}")
    try:
        given = readings.JudgeInput.model_validate(document)
    except ValidationError as error:
        lines = [
            f"{source}: {manifests.format_path(tuple(e['loc'])) or '(top level)'}: {manifests.describe(e)}"
            for e in error.errors(include_url=False)
        ]
        return _fail("\n".join(lines))
    try:
        return _print(judge.assess(given.template, given.observations, final=given.final))
    except (judge.InputError, ValueError, ArithmeticError) as error:
        # InputError names the field; anything else the judge could not read is still the input's.
        return _fail(f"{source}: {error}")


def parse_time(text: str, flag: str) -> datetime:
    try:
        return datetime.fromtimestamp(float(text), UTC)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{flag} {text!r}: expected RFC 3339 (2026-11-23T10:00:00Z) or epoch seconds"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _load_template(path: Path) -> kinds.AnalysisTemplate:
    found = [m.resource for m in manifests.load_file(path) if isinstance(m.resource, kinds.AnalysisTemplate)]
    if not found:
        raise ValueError(f"{path}: no AnalysisTemplate in the file")
    return found[0]


def _analyze(args: argparse.Namespace) -> int:
    from controller.adapters.prometheus import prometheus_source

    try:
        template = _load_template(args.template)
        start = parse_time(args.start, "--start")
        end = parse_time(args.end, "--end") if args.end else datetime.now(UTC)
        warmup: timedelta = schema.parse_duration(args.warmup)
    except manifests.ManifestError as error:
        return _fail(str(error))
    except (OSError, ValueError) as error:
        return _fail(str(error))
    if end <= start:
        return _fail(f"--end {end.isoformat()} is not after --start {start.isoformat()}")
    target = prometheus_source.Target(
        namespace=args.namespace,
        release=args.release,
        canary=prometheus_source.ArmSelector(args.canary, args.canary_track),
        baseline=prometheus_source.ArmSelector(args.baseline, args.baseline_track),
        model=args.model,
    )
    window = prometheus_source.build_window(start, end, template.spec.interval, warmup)
    print(
        f"judging {window.count} interval(s) of {schema.format_duration(template.spec.interval)} "
        f"from {start.isoformat()} against {args.prometheus}",
        file=sys.stderr,
    )
    try:
        with prometheus_source.PrometheusSource(args.prometheus, token_file=args.token_file) as source:
            series = source.fetch_observations(template.spec, target, window)
        return _print(judge.assess(template.spec, series, final=args.final))
    except prometheus_source.SourceError as error:
        return _fail(str(error), 1)
    except (prometheus_source.DataError, judge.InputError) as error:
        return _fail(f"{args.template}: {error}")
