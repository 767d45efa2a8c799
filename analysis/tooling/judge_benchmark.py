"""`python -m analysis.tooling.judge_benchmark`: our judge against Kayenta-style and threshold-style judges.

Every judge sees the same simulated releases: one 60-minute analysis step judged every minute,
the window opening 3 minutes after the canary started, canary weight 10 %, at 10 / 100 / 1000
requests per second, ≥ 200 seeds per cell, on two bucket layouts: Prometheus' default buckets
(1.3–2.5× apart, what KServe and many Python servers export) and fine 2.5 %-apart buckets. The
template is the reference one (errors 20 % relative or 0.1 point, p50 5 %, p99 10 %, GPU 5 %,
output classes 20 % or 0.5 point; α 5 %, β 10 %).

Good releases measure false rollbacks and promotions (share passed within 60 minutes and the
median minute of the pass); bad ones measure detection (rollback within 60 minutes) and time
to rollback. Our judge and the threshold judge watch every minute; the Kayenta-style judge gives
one verdict at minute 60 (so it promotes at 60 what it does not fail).

The threshold judge's p99 bound is matched to a false-rollback rate: for each traffic level,
the smallest bound (in steps of 5 % of the true baseline p99) whose worst false-rollback rate
over the good scenarios, on separate calibration seeds, is ≤ 2 % — our target, so the threshold
judge is never held to a stricter standard than ours.

For every good scenario the *oracle* is printed beside our promotions: the share a fixed-horizon
test of the whole window passes, looked at once at minute 60 with the same nulls and levels
(`oracle.py`) — what any judge that may look only once could promote. A last table judges p99
+10/+25/+50 % and the good releases beside them on every bucket layout we ship, with a Pareto
tail and with a batching body and lognormal tail, at 100 requests/s.

Figures are printed and written between markers in docs/benchmarks.md (other sections stay).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import pathlib
import sys
import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from scipy import stats

from analysis import judge, markdown, readings, reference, specs, verdicts
from analysis.tooling import baselines, batch, observed, oracle, traffic_simulator

TRAFFIC = (10.0, 100.0, 1000.0)
INTERVALS = 60
WARMUP_EXCLUDED = 180.0
TARGET_FALSE_ROLLBACKS = 0.02
SECTION = "analysis-benchmark"
BASE = traffic_simulator.Behaviour()
# A continuous-batching server: 35 % of requests wait for the next batch (a second hump 1.8× the
# median), and a 4 % slow path with a lognormal tail around 3× the median. Its p99 sits between
# coarse edges where a tail regression barely moves the edge below it.
BATCHING = traffic_simulator.Behaviour(batch_share=0.35, tail_weight=0.04, tail_start=3.0, tail_sigma=0.45)


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    good: bool
    scenario: traffic_simulator.Scenario
    onset_interval: int = 0
    background: bool = False  # ours keeps judging after a pass, as a background analysis does


def cases() -> list[Case]:
    onset = WARMUP_EXCLUDED + 20 * 60
    scenario = traffic_simulator.Scenario
    low_errors = dataclasses.replace(BASE, error_rate=0.001)
    return [
        Case("A/A", True, scenario("aa")),
        Case("A/A, errors on a 0.1 % base", True, scenario("aa-low", baseline=low_errors, canary=low_errors)),
        Case(
            "diurnal ±30 % and traffic bursts ×3",
            True,
            scenario("load", diurnal_amplitude=0.3, diurnal_phase=math.pi, bursts_per_hour=3),
        ),
        Case(
            "slowdowns +30 % for 2–6 min on either arm, 2/h each",
            True,
            scenario("episodes", episodes_per_hour=2),
        ),
        Case(
            "warm-up longer than configured (τ 3 min, +50 %)",
            True,
            scenario("warmup", warmup_seconds=180, warmup_slowdown=0.5),
        ),
        Case("pod offsets ±2 % (inside the 5 % margin)", True, scenario("offsets", pod_offset=0.02)),
        Case("p99 +25 %", False, scenario("p99+25", canary=BASE.with_quantile_change(0.99, 0.25))),
        Case("median +10 %", False, scenario("p50+10", canary=BASE.with_quantile_change(0.5, 0.10))),
        Case(
            "errors 2× on 0.5 %", False, scenario("err2x", canary=dataclasses.replace(BASE, error_rate=0.01))
        ),
        Case(
            "errors +0.5 pp on 0.1 %",
            False,
            scenario("err+0.5pp", baseline=low_errors, canary=dataclasses.replace(BASE, error_rate=0.006)),
        ),
        Case(
            "errors 3× from minute 20",
            False,
            scenario("onset", canary=dataclasses.replace(BASE, error_rate=0.015), onset_seconds=onset),
            onset_interval=20,
        ),
        Case(
            "errors 3× from minute 20, background analysis",
            False,
            scenario("onset-bg", canary=dataclasses.replace(BASE, error_rate=0.015), onset_seconds=onset),
            onset_interval=20,
            background=True,
        ),
        Case(
            "GPU utilisation +15 %",
            False,
            scenario("gpu", canary=dataclasses.replace(BASE, gpu_utilisation=BASE.gpu_utilisation * 1.15)),
        ),
        Case(
            "p99 +25 % with slowdowns on either arm",
            False,
            scenario("p99+25-episodes", canary=BASE.with_quantile_change(0.99, 0.25), episodes_per_hour=2),
        ),
        # Appended, not inserted: each case's seeds follow its place in this list, so a new case
        # last leaves every earlier figure as it was.
        Case(
            "canary pods 2 % slower throughout (inside the 5 % margin)",
            True,
            scenario("arm-offset", canary_offset=0.02),
        ),
        Case(
            "batching body, lognormal tail: A/A",
            True,
            scenario("batch-aa", baseline=BATCHING, canary=BATCHING),
        ),
        Case(
            "batching body, lognormal tail: canary pods 2 % slower throughout",
            True,
            scenario("batch-arm-offset", baseline=BATCHING, canary=BATCHING, canary_offset=0.02),
        ),
        Case(
            "batching body, lognormal tail: p99 +25 % (the tail moves, the body does not)",
            False,
            scenario("batch-p99+25", baseline=BATCHING, canary=BATCHING.with_quantile_change(0.99, 0.25)),
        ),
        Case(
            "batching body, lognormal tail: p99 +25 % with slowdowns on either arm",
            False,
            scenario(
                "batch-p99+25-episodes",
                baseline=BATCHING,
                canary=BATCHING.with_quantile_change(0.99, 0.25),
                episodes_per_hour=2,
            ),
        ),
    ]


LAYOUTS: dict[str, np.ndarray] = {
    "Prometheus default buckets (1.3–2.5× apart)": traffic_simulator.REAL_EDGES["prometheus-default"],
    "fine buckets (2.5 % apart)": traffic_simulator.DEFAULT_EDGES,
}


@dataclasses.dataclass(frozen=True)
class Result:
    rollback_at: np.ndarray  # (S,) minute index of rollback or -1
    promoted_at: np.ndarray  # (S,) minute index of promotion (a pass before any rollback) or -1
    canary_requests: np.ndarray  # (S,) canary requests served up to and including the rollback


def _served(canary: traffic_simulator.ArmCounts, at: np.ndarray) -> np.ndarray:
    cumulative = np.cumsum(canary.requests, axis=1)
    return np.where(at >= 0, cumulative[np.arange(len(at)), np.maximum(at, 0)], cumulative[:, -1])


def _simulate(
    case: Case, rps: float, seeds: int, seed: int, edges: np.ndarray
) -> tuple[traffic_simulator.ArmCounts, traffic_simulator.ArmCounts]:
    return traffic_simulator.simulate_intervals(
        dataclasses.replace(case.scenario, rps=rps),
        seeds=seeds,
        intervals=INTERVALS,
        seed=seed,
        start_seconds=WARMUP_EXCLUDED,
        edges=edges,
    )


def _at_end(failed: np.ndarray) -> Result:
    """A judge that decides once at minute 60: it rolls back or promotes then."""
    at = np.where(failed, INTERVALS - 1, -1)
    return Result(at, np.where(failed, -1, INTERVALS - 1), np.zeros(len(at)))


def judge_ours(
    canary: traffic_simulator.ArmCounts,
    baseline: traffic_simulator.ArmCounts,
    edges: np.ndarray,
    background: bool = False,
) -> Result:
    outcome = batch.outcomes(batch.sub_tests(reference.reference_template(), canary, baseline, edges))
    first = (outcome.pass_at >= 0) & ((outcome.fail_at < 0) | (outcome.pass_at < outcome.fail_at))
    if background:  # a background analysis across the rollout: a pass does not end the watch
        first = np.zeros_like(first)
    # A promoted release is not judged further: a later crossing would not roll it back.
    rollback = np.where(first, -1, outcome.fail_at)
    return Result(rollback, np.where(first, outcome.pass_at, -1), _served(canary, rollback))


def judge_kayenta(
    canary: traffic_simulator.ArmCounts, baseline: traffic_simulator.ArmCounts, edges: np.ndarray
) -> Result:
    failed = baselines.kayenta_rollbacks(baselines.kayenta_metrics(canary, baseline, edges), INTERVALS)
    result = _at_end(failed)
    return dataclasses.replace(result, canary_requests=_served(canary, result.rollback_at))


def judge_threshold(canary: traffic_simulator.ArmCounts, bound: float, edges: np.ndarray) -> Result:
    at = baselines.threshold_first_rollback(canary, edges, bound)
    return Result(at, np.where(at >= 0, -1, INTERVALS - 1), _served(canary, at))


def calibrate_threshold(rps: float, seeds: int, edges: np.ndarray) -> tuple[float, float]:
    """Smallest p99 bound (× the true p99) with ≤ 2 % false rollbacks on every good case; and that rate."""
    true_p99 = BASE.latency_quantile(0.99)
    goods = [c for c in cases() if c.good]
    canaries = [_simulate(case, rps, seeds, 10_000 + i, edges)[0] for i, case in enumerate(goods)]
    best: tuple[float, float] | None = None
    for factor in np.arange(1.0, 4.0001, 0.05):
        bound = float(true_p99 * factor)
        worst = max(float((judge_threshold(c, bound, edges).rollback_at >= 0).mean()) for c in canaries)
        if worst <= TARGET_FALSE_ROLLBACKS:
            return bound, worst
        if best is None or worst <= best[1]:  # ties: the looser bound, the kinder to it
            best = (bound, worst)
    assert best is not None
    # Not reachable by the bound alone (the fixed 99 % success-rate check fails by itself at low
    # traffic): keep the bound with the fewest false rollbacks and say so in the table.
    return best


def _rate_ci(hits: int, n: int) -> str:
    low = stats.beta.ppf(0.025, hits, n - hits + 1) if hits else 0.0
    high = stats.beta.ppf(0.975, hits + 1, n - hits) if hits < n else 1.0
    return f"{hits / n:.1%} [{low:.1%}, {high:.1%}]"


def _median_minute(at: np.ndarray) -> str:
    hit = at >= 0
    return f"{np.median(at[hit] + 1):.0f}" if hit.any() else "–"


def _row(case: Case, judge_name: str, result: Result, seeds: int) -> str:
    rollbacks = int((result.rollback_at >= 0).sum())
    promoted = int((result.promoted_at >= 0).sum())
    served = result.canary_requests[result.rollback_at >= 0]
    served_text = f"{np.median(served):,.0f}" if len(served) and served.any() else "–"
    if case.good:
        promote_minute = _median_minute(result.promoted_at)
        return (
            f"| {case.name} | {judge_name} | {_rate_ci(promoted, seeds)} | {promote_minute} "
            f"| {_rate_ci(rollbacks, seeds)} | | |"
        )
    return (
        f"| {case.name} | {judge_name} | {_rate_ci(promoted, seeds)} | | | {_rate_ci(rollbacks, seeds)} "
        f"| {_median_minute(result.rollback_at)} ({served_text} canary requests) |"
    )


def _oracle_row(
    case: Case,
    canary: traffic_simulator.ArmCounts,
    baseline: traffic_simulator.ArmCounts,
    edges: np.ndarray,
    seeds: int,
) -> str:
    ceiling = int(oracle.passes(reference.reference_template(), canary, baseline, edges).sum())
    ours = judge_ours(canary, baseline, edges)
    promoted = int((ours.promoted_at >= 0).sum())
    share = f"{promoted / ceiling:.0%}" if ceiling else "–"
    return (
        f"| {case.name} | {_rate_ci(ceiling, seeds)} | {_rate_ci(promoted, seeds)} | {share} "
        f"| {_median_minute(ours.promoted_at)} |"
    )


LAYOUT_RPS = 100.0
LAYOUT_FAMILIES = {"Pareto tail": BASE, "batching body, lognormal tail": BATCHING}


def _layout_cases(behaviour: traffic_simulator.Behaviour) -> list[Case]:
    scenario = traffic_simulator.Scenario
    return [
        Case("A/A", True, scenario("aa", baseline=behaviour, canary=behaviour)),
        Case(
            "slowdowns on either arm",
            True,
            scenario("episodes", baseline=behaviour, canary=behaviour, episodes_per_hour=2),
        ),
        Case(
            "canary pods 2 % slower",
            True,
            scenario("arm-offset", baseline=behaviour, canary=behaviour, canary_offset=0.02),
        ),
        *(
            Case(
                f"p99 +{change:.0%}",
                False,
                scenario(
                    f"p99+{change}", baseline=behaviour, canary=behaviour.with_quantile_change(0.99, change)
                ),
            )
            for change in (0.10, 0.25, 0.50)
        ),
    ]


def _layouts(seeds: int) -> list[str]:
    """p99 regressions and the good releases beside them, on every bucket layout we ship."""
    layouts = {
        **traffic_simulator.REAL_EDGES,
        "fine (2.5 %)": traffic_simulator.DEFAULT_EDGES,
    }
    lines = [
        f"### p99 on every bucket layout, {LAYOUT_RPS:g} requests/s (the whole reference template judges)",
        "",
        "Share of releases rolled back within 60 minutes (median minute); for p99 +10 % (at the "
        "margin) a rollback is allowed but not required, and passing it is what β bounds.",
        "",
        "| layout | latency shape | A/A | slowdowns on either arm | canary pods 2 % slower "
        "| p99 +10 % | p99 +25 % | p99 +50 % |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for layout_index, (layout, edges) in enumerate(layouts.items()):
        for family_index, (family, behaviour) in enumerate(LAYOUT_FAMILIES.items()):
            cells = []
            for case_index, case in enumerate(_layout_cases(behaviour)):
                seed = 50_000 + 1000 * layout_index + 100 * family_index + case_index
                canary, baseline = _simulate(case, LAYOUT_RPS, seeds, seed, edges)
                result = judge_ours(canary, baseline, edges)
                rolled = result.rollback_at >= 0
                cells.append(f"{rolled.mean():.1%} ({_median_minute(result.rollback_at)})")
            lines.append(f"| {layout} | {family} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def run(seeds: int, traffic: Sequence[float]) -> str:
    lines: list[str] = []
    summary: list[str] = []
    for layout, edges in LAYOUTS.items():
        for rps in traffic:
            bound, bound_rate = calibrate_threshold(rps, seeds, edges)
            lines += [
                f"### {layout}, {rps:g} requests/s (canary {rps * 0.1:g}/s)",
                "",
                f"Threshold judge's p99 bound: {bound * 1000:.0f} ms "
                f"({bound / BASE.latency_quantile(0.99):.2f}× the true p99; "
                f"worst calibration false-rollback rate {bound_rate:.1%}"
                + (
                    ")."
                    if bound_rate <= TARGET_FALSE_ROLLBACKS
                    else "; no bound reaches 2 %: its fixed 99 % success-rate check alone rolls good "
                    "canaries back)."
                ),
                "",
                "| scenario | judge | promoted (95 % CI) | median min to promote | false rollbacks "
                "| detected | median min to rollback |",
                "|---|---|---|---|---|---|---|",
            ]
            against_oracle: list[str] = []
            for index, case in enumerate(cases()):
                canary, baseline = _simulate(case, rps, seeds, int(rps) * 100 + index, edges)
                if case.good:
                    against_oracle.append(_oracle_row(case, canary, baseline, edges, seeds))
                results = {
                    "ours": judge_ours(canary, baseline, edges, case.background),
                    "Kayenta-style": judge_kayenta(canary, baseline, edges),
                    "threshold-style": judge_threshold(canary, bound, edges),
                }
                for judge_name, result in results.items():
                    lines.append(_row(case, judge_name, result, seeds))
                    hits = int(((result.promoted_at if case.good else result.rollback_at) >= 0).sum())
                    what = "promoted" if case.good else "detected"
                    summary.append(
                        f"{layout[:10]}\t{rps:g}\t{case.name}\t{judge_name}\t{what} {hits}/{seeds}"
                    )
            lines += [
                "",
                "Promotion against the oracle (a fixed-horizon test of the whole window at minute 60, "
                "same nulls and levels; see docs/analysis.md):",
                "",
                "| good scenario | oracle passes | ours promoted | share of the oracle "
                "| median min to promote |",
                "|---|---|---|---|---|",
                *against_oracle,
                "",
            ]
    lines += _layouts(seeds)
    lines += _cost()
    print("\n".join(summary), file=sys.stderr)
    return "\n".join(lines)


Work = Callable[[], object]


def _cpu_per_call(works: Sequence[Work], rounds: int = 9, repeat: int = 8) -> list[float]:
    """CPU seconds of one call of each work, in its fastest batch, as `timeit` advises. The works
    take turns batch by batch: on this shared machine whole seconds run 1.5× slower at times, and
    taking turns spreads those over every work instead of landing on one window length."""
    fastest = [math.inf] * len(works)
    for _ in range(rounds):
        for index, work in enumerate(works):
            started = time.process_time()
            for _ in range(repeat):
                work()
            fastest[index] = min(fastest[index], (time.process_time() - started) / repeat)
    return fastest


def _look_from_state(
    template: specs.AnalysisTemplateSpec, samples: Mapping[str, Sequence[readings.IntervalSample]]
) -> tuple[Work, verdicts.EvidenceRecord]:
    """A look as the controller makes it at the end of `samples`, and the state it starts from:
    resume the record, fold the interval that settled, judge the newest two on a copy, pack."""
    settled = min(len(got) for got in samples.values()) - 2
    record = judge.fold(template, {name: got[: settled - 1] for name, got in samples.items()}).record("cost")
    new = {name: got[settled - 1 : settled] for name, got in samples.items()}
    newest = {name: got[settled:] for name, got in samples.items()}

    def look() -> None:
        state = judge.resume(template, record, "cost")
        assert state is not None
        kept = judge.fold(template, new, state)
        judge.conclude(template, judge.fold(template, newest, kept))
        kept.record("cost")

    return look, record


def _cost() -> list[str]:
    """CPU per look of the judge as the controller runs it (`_look_from_state`), and beside it a full
    recomputation of the window (what each look cost before the state was kept)."""
    template = reference.reference_template()
    layouts = {
        "Prometheus buckets": traffic_simulator.REAL_EDGES["prometheus-default"],
        "fine buckets": traffic_simulator.DEFAULT_EDGES,
    }
    windows = (10, INTERVALS, 4 * INTERVALS)
    works: list[Work] = []
    sizes: dict[str, dict[str, int]] = {}
    for intervals in windows:
        for layout, edges in layouts.items():
            canary, baseline = traffic_simulator.simulate_intervals(
                traffic_simulator.Scenario("cost"), seeds=1, intervals=intervals, seed=1, edges=edges
            )
            samples = observed.interval_samples(template, canary, baseline, 0, edges)
            look, record = _look_from_state(template, samples)
            sizes[layout] = {m.name: len(m.state) for m in record.metrics}
            works += [look, functools.partial(judge.assess, template, samples)]
    measured = iter(_cpu_per_call(works))
    lines = [
        "### Cost of one look",
        "",
        "| window | per look from the state, Prometheus buckets | full recomputation | "
        "per look from the state, fine buckets | full recomputation |",
        "|---|---|---|---|---|",
    ]
    for intervals in windows:
        cells = [f"{next(measured) * 1000:.1f} ms" for _ in range(2 * len(layouts))]
        lines.append(f"| {intervals} min | {' | '.join(cells)} |")
    queries = 2 * sum(len(metric.queries()) for metric in template.metrics)
    names = list(sizes["Prometheus buckets"])
    return [
        *lines,
        "",
        "CPU of one call in the fastest of 9 batches of 8, the cells taking turns (the machine's noise "
        "only adds). Compact state in the run's record in status, bytes of its packed form per metric "
        "(the same at any window length):",
        "",
        f"| layout | {' | '.join(names)} |",
        f"|---|{'---|' * len(names)}",
        *(f"| {layout} | {' | '.join(f'{size[n]:,}' for n in names)} |" for layout, size in sizes.items()),
        "",
        f"Prometheus per look: {queries} range queries (one per query and arm) and one more per latency "
        "metric and arm for a native histogram beside the classic one, each over the intervals after the "
        "state recorded in status plus the newest two again (a restarted controller reads the same: its "
        "state is in status, not in memory).",
        "",
    ]


def write(out: pathlib.Path, body: str, command: str, elapsed: float) -> None:
    section = "\n".join(
        [
            "## Analysis judge versus Kayenta-style and threshold-style judges",
            "",
            f"Command: `{command}` ({elapsed:.0f} s on this machine). Written by the benchmark; the",
            "method and the reading of these figures are in docs/analysis.md.",
            "",
            body,
        ]
    )
    markdown.write_section(out, SECTION, section)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.tooling.judge_benchmark", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--seeds", type=int, default=200, help="simulated releases per cell (default 200)")
    parser.add_argument("--traffic", type=float, nargs="+", default=list(TRAFFIC), help="requests per second")
    parser.add_argument("--out", type=pathlib.Path, help="markdown file to update (e.g. docs/benchmarks.md)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    body = run(args.seeds, args.traffic)
    elapsed = time.monotonic() - started
    print(body)
    if args.out:
        command = "python -m analysis.tooling.judge_benchmark " + " ".join(
            sys.argv[1:] if argv is None else argv
        )
        write(args.out, body, command.strip(), elapsed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
