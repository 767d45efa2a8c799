"""`python -m analysis.tooling.judge_benchmark`: our judge against Kayenta-style and threshold-style judges.

Every judge sees the same simulated releases: 60 one-minute intervals after a 3-minute warm-up
exclusion, canary weight 10 %, at 10 / 100 / 1000 requests per second, ≥ 200 seeds per cell.
Good releases measure false rollbacks, bad ones missed regressions (no rollback within 60
minutes), time to rollback and canary requests served before it. Our judge and the threshold
judge watch every minute; the Kayenta-style judge gives one verdict at minute 60.

The threshold judge's p99 bound is matched to a false-rollback rate: for each traffic level,
the smallest bound (in steps of 5 % of the true baseline p99) whose worst false-rollback rate
over the good scenarios, on separate calibration seeds, is ≤ 2 % — our target, so the threshold
judge is never held to a stricter standard than ours.

Figures are printed and written between markers in docs/benchmarks.md (other sections stay).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import pathlib
import sys
import time
from collections.abc import Sequence

import numpy as np
from scipy import stats

from analysis import markdown, reference
from analysis.tooling import baselines, batch, traffic_simulator

TRAFFIC = (10.0, 100.0, 1000.0)
INTERVALS = 60
WARMUP_EXCLUDED = 180.0
TARGET_FALSE_ROLLBACKS = 0.02
SECTION = "analysis-benchmark"
BASE = traffic_simulator.Behaviour()


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    good: bool
    scenario: traffic_simulator.Scenario
    onset_interval: int = 0


def cases() -> list[Case]:
    slow_onset = WARMUP_EXCLUDED + 20 * 60
    return [
        Case("A/A", True, traffic_simulator.Scenario("aa")),
        Case(
            "diurnal ±30 %",
            True,
            traffic_simulator.Scenario("diurnal", diurnal_amplitude=0.3, diurnal_phase=math.pi),
        ),
        Case("warm-up (τ 30 s, +50 %)", True, traffic_simulator.Scenario("warmup", warmup_seconds=30)),
        Case("pod offsets ±1 %", True, traffic_simulator.Scenario("offsets", pod_offset=0.01)),
        Case(
            "p99 +5 %",
            False,
            traffic_simulator.Scenario("p99+5", canary=BASE.with_quantile_change(0.99, 0.05)),
        ),
        Case(
            "p99 +10 %",
            False,
            traffic_simulator.Scenario("p99+10", canary=BASE.with_quantile_change(0.99, 0.10)),
        ),
        Case(
            "p99 +20 %",
            False,
            traffic_simulator.Scenario("p99+20", canary=BASE.with_quantile_change(0.99, 0.20)),
        ),
        Case(
            "median +10 %",
            False,
            traffic_simulator.Scenario("p50+10", canary=BASE.with_quantile_change(0.5, 0.10)),
        ),
        Case(
            "errors 2× on 0.5 %",
            False,
            traffic_simulator.Scenario("err2x", canary=dataclasses.replace(BASE, error_rate=0.01)),
        ),
        Case(
            "errors +0.5 pp on 0.1 %",
            False,
            traffic_simulator.Scenario(
                "err+0.5pp",
                baseline=dataclasses.replace(BASE, error_rate=0.001),
                canary=dataclasses.replace(BASE, error_rate=0.006),
            ),
        ),
        Case(
            "errors 2×, onset at 20 min",
            False,
            traffic_simulator.Scenario(
                "onset", canary=dataclasses.replace(BASE, error_rate=0.01), onset_seconds=slow_onset
            ),
            onset_interval=20,
        ),
        Case(
            "GPU utilisation +10 %",
            False,
            traffic_simulator.Scenario("gpu", canary=dataclasses.replace(BASE, gpu_utilisation=0.605)),
        ),
        Case(
            "output drift (rare class 2×)",
            False,
            traffic_simulator.Scenario(
                "drift", canary=dataclasses.replace(BASE, class_shares=(0.66, 0.20, 0.10, 0.04))
            ),
        ),
    ]


@dataclasses.dataclass(frozen=True)
class Result:
    rollback_at: np.ndarray  # (S,) minute index of rollback or -1
    canary_requests: np.ndarray  # (S,) canary requests served up to and including that minute
    passed_first: np.ndarray | None = None  # ours only: a pass came before any rollback


def _served(canary: traffic_simulator.ArmCounts, at: np.ndarray) -> np.ndarray:
    cumulative = np.cumsum(canary.requests, axis=1)
    return np.where(at >= 0, cumulative[np.arange(len(at)), np.maximum(at, 0)], cumulative[:, -1])


def _simulate(
    case: Case, rps: float, seeds: int, seed: int
) -> tuple[traffic_simulator.ArmCounts, traffic_simulator.ArmCounts]:
    return traffic_simulator.simulate_intervals(
        dataclasses.replace(case.scenario, rps=rps),
        seeds=seeds,
        intervals=INTERVALS,
        seed=seed,
        start_seconds=WARMUP_EXCLUDED,
    )


def judge_ours(canary: traffic_simulator.ArmCounts, baseline: traffic_simulator.ArmCounts) -> Result:
    outcome = batch.outcomes(
        batch.sub_tests(reference.reference_template(), canary, baseline, traffic_simulator.DEFAULT_EDGES)
    )
    passed_first = (outcome.pass_at >= 0) & ((outcome.fail_at < 0) | (outcome.pass_at < outcome.fail_at))
    return Result(outcome.fail_at, _served(canary, outcome.fail_at), passed_first)


def judge_kayenta(canary: traffic_simulator.ArmCounts, baseline: traffic_simulator.ArmCounts) -> Result:
    failed = baselines.kayenta_rollbacks(
        baselines.kayenta_metrics(canary, baseline, traffic_simulator.DEFAULT_EDGES), INTERVALS
    )
    at = np.where(failed, INTERVALS - 1, -1)
    return Result(at, _served(canary, at))


def judge_threshold(canary: traffic_simulator.ArmCounts, bound: float) -> Result:
    at = baselines.threshold_first_rollback(canary, traffic_simulator.DEFAULT_EDGES, bound)
    return Result(at, _served(canary, at))


def calibrate_threshold(rps: float, seeds: int) -> tuple[float, float]:
    """Smallest p99 bound (× the true p99) with ≤ 2 % false rollbacks on every good case; and that rate."""
    true_p99 = BASE.latency_quantile(0.99)
    goods = [c for c in cases() if c.good]
    canaries = [_simulate(case, rps, seeds, seed=10_000 + i)[0] for i, case in enumerate(goods)]
    best: tuple[float, float] | None = None
    for factor in np.arange(1.0, 4.0001, 0.05):
        bound = float(true_p99 * factor)
        worst = max(float((judge_threshold(c, bound).rollback_at >= 0).mean()) for c in canaries)
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


def _times(result: Result) -> tuple[str, str, str]:
    hit = result.rollback_at >= 0
    if not hit.any():
        return "–", "–", "–"
    minutes = result.rollback_at[hit] + 1
    return (
        f"{np.median(minutes):.0f}",
        f"{np.percentile(minutes, 90):.0f}",
        f"{np.median(result.canary_requests[hit]):,.0f}",
    )


def run(seeds: int, traffic: Sequence[float]) -> str:
    lines: list[str] = []
    summary: list[str] = []
    for rps in traffic:
        bound, bound_rate = calibrate_threshold(rps, seeds)
        lines += [
            f"### {rps:g} requests/s (canary {rps * 0.1:g}/s)",
            "",
            f"Threshold judge's p99 bound: {bound * 1000:.0f} ms "
            f"({bound / BASE.latency_quantile(0.99):.2f}× the true p99; "
            f"worst calibration false-rollback rate {bound_rate:.1%}"
            + (
                ")."
                if bound_rate <= TARGET_FALSE_ROLLBACKS
                else "; no bound reaches 2 %: its fixed 99 % success-rate check alone rolls good "
                "canaries back, so its detection below is at a higher false-rollback rate than ours)."
            ),
            "",
            "| scenario | judge | false rollbacks / detected (95 % CI) | median min | p90 min "
            "| canary requests before | ours: passed first |",
            "|---|---|---|---|---|---|---|",
        ]
        for index, case in enumerate(cases()):
            canary, baseline = _simulate(case, rps, seeds, seed=int(rps) * 100 + index)
            results = {
                "ours": judge_ours(canary, baseline),
                "Kayenta-style": judge_kayenta(canary, baseline),
                "threshold-style": judge_threshold(canary, bound),
            }
            for judge_name, result in results.items():
                hits = int((result.rollback_at >= 0).sum())
                median, p90, served = _times(result)
                first = "" if result.passed_first is None else f"{result.passed_first.mean():.0%}"
                label = "false rollbacks" if case.good else "detected"
                rate = _rate_ci(hits, seeds)
                lines.append(
                    f"| {case.name} | {judge_name} | {label} {rate} | {median} | {p90} | {served} | {first} |"
                )
                summary.append(f"{rps:g}\t{case.name}\t{judge_name}\t{hits}/{seeds}\t{median}")
        lines.append("")
    print("\n".join(summary), file=sys.stderr)
    return "\n".join(lines)


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
