"""The verdict report as one self-contained HTML page: inline SVG plots, inline CSS, no script and
no network, so it can be attached to an incident or a PR as it is.

Per analysis: the decision and when it was reached; per metric, its evidence over the looks against
the threshold 1/α (log scale), and its effect with the confidence band against the margin; and the
requests per arm with the canary's share of them.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from analysis import timeline
from controller.cli import report as report_

WIDTH, HEIGHT = 560, 220
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 28, 36
COLOURS = {
    "canary": "#d9480f",
    "stable": "#1c7ed6",
    "threshold": "#c92a2a",
    "band": "#ffd8a8",
    "margin": "#2b8a3e",
}
VERDICT_COLOURS = {"Pass": "#2b8a3e", "Fail": "#c92a2a", "Inconclusive": "#e67700", "Running": "#495057"}

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px; color: #212529; max-width: 1200px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 32px; }
.verdict { font-weight: 600; padding: 1px 8px; border-radius: 4px; color: white; }
.plots { display: flex; flex-wrap: wrap; gap: 12px; }
svg.plot { border: 1px solid #dee2e6; background: #fff; }
svg.plot text { font: 11px system-ui, sans-serif; fill: #495057; }
svg.plot .title { font-size: 12px; font-weight: 600; fill: #212529; }
.muted { color: #868e96; } code { background: #f1f3f5; padding: 0 3px; }
"""


def render_html(report: report_.Report) -> str:
    esc = html.escape
    status = report.status
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>modelrelease report: {esc(report.namespace)}/{esc(report.name)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f'<h1 id="release">ModelRelease {esc(report.namespace)}/{esc(report.name)}</h1>',
        f"<p>{_badge(status.phase.value)} {esc(status.message)}</p>",
    ]
    if not report.analyses:
        parts.append('<p class="muted">No analysis in this rollout yet.</p>')
    for index, each in enumerate(report.analyses):
        parts.append(_section(index, each))
    parts.append(
        '<p class="muted">Replayed from Prometheus with the same judge the controller runs '
        "(<code>kubectl modelrelease report</code>).</p></body></html>"
    )
    return "\n".join(parts)


def _badge(verdict: str) -> str:
    colour = VERDICT_COLOURS.get(verdict, "#495057")
    return f'<span class="verdict" style="background:{colour}">{html.escape(verdict)}</span>'


def _section(index: int, each: report_.AnalysisReport) -> str:
    esc = html.escape
    record = each.record
    parts = [
        f'<section class="analysis" id="analysis-{index}">',
        f"<h2>Analysis <code>{esc(record.run)}</code> — {esc(record.template)}, {esc(each.where)}</h2>",
        f'<p class="decision">{_badge(record.verdict.value)} {esc(report_.decision_text(each))}</p>',
    ]
    if record.rule:
        parts.append(f"<p>{esc(record.rule)}</p>")
    compared = (
        f"Canary <code>{esc(record.canary_revision or '-')}</code> (model "
        f"{esc(record.canary_model_version or '-')}) against stable "
        f"<code>{esc(record.baseline_revision or '-')}</code>"
    )
    if each.traffic is not None:
        compared += f"; traffic to the canary during the step: {esc(each.traffic)}"
    parts.append(f"<p>{compared}.</p>")
    if each.timeline is None:
        parts.append(f'<p class="muted">Not replayed: {esc(each.problem or "")}</p></section>')
        return "\n".join(parts)
    replayed = each.timeline
    start = record.started_at
    xs = [(look.at - start).total_seconds() if look.at else float(look.index) for look in replayed.looks]
    decided = replayed.decided
    decided_x = xs[decided.index] if decided is not None else None
    parts.append('<div class="plots">')
    parts.append(_traffic_plot(index, replayed, xs, decided_x))
    for metric in replayed.template.metrics:
        results = [look.metric(metric.name) for look in replayed.looks]
        evidence = [r.evidence if r is not None else None for r in results]
        parts.append(
            _plot(
                f"{metric.name}: evidence against 1/α",
                xs,
                [("evidence", evidence, COLOURS["canary"])],
                hlines=[(replayed.threshold(metric.name), "fail at 1/α", COLOURS["threshold"])],
                log=True,
                decided_x=decided_x,
                css_id=f"evidence-{index}-{metric.name}",
            )
        )
        margin = next((r.margin for r in results if r is not None and r.margin is not None), None)
        effects = [r.effect if r is not None else None for r in results]
        if any(e is not None for e in effects):
            title, line = f"{metric.name}: effect with its confidence band", ("effect", effects)
        else:  # a one-arm metric (agreement): the canary's own value against its bound
            title = f"{metric.name}: canary's value against its bound"
            line = ("canary", [r.canary if r is not None else None for r in results])
        parts.append(
            _plot(
                title,
                xs,
                [(line[0], line[1], COLOURS["canary"])],
                band=(
                    [r.ci_low if r is not None else None for r in results],
                    [r.ci_high if r is not None else None for r in results],
                ),
                hlines=[(margin, "margin", COLOURS["margin"])] if margin is not None else [],
                decided_x=decided_x,
                css_id=f"effect-{index}-{metric.name}",
            )
        )
    parts.append("</div></section>")
    return "\n".join(parts)


def _traffic_plot(index: int, replayed: timeline.Timeline, xs: list[float], decided_x: float | None) -> str:
    canary = [look.canary_requests for look in replayed.looks]
    stable = [look.baseline_requests for look in replayed.looks]
    return _plot(
        "requests per interval, by arm",
        xs,
        [("canary", canary, COLOURS["canary"]), ("stable", stable, COLOURS["stable"])],
        decided_x=decided_x,
        css_id=f"traffic-{index}",
    )


def _plot(
    title: str,
    xs: Sequence[float],
    lines: Sequence[tuple[str, Sequence[float | None], str]],
    *,
    band: tuple[Sequence[float | None], Sequence[float | None]] | None = None,
    hlines: Sequence[tuple[float, str, str]] = (),
    log: bool = False,
    decided_x: float | None = None,
    css_id: str,
) -> str:
    """One SVG line chart: lines with gaps where a value is missing, an optional band, level lines."""

    def scale_y(value: float) -> float:
        return math.log10(max(value, 1e-6)) if log else value

    values = [scale_y(v) for _, ys, _ in lines for v in ys if v is not None and math.isfinite(v)]
    values += [scale_y(y) for y, _, _ in hlines]
    if band is not None:
        values += [scale_y(v) for side in band for v in side if v is not None and math.isfinite(v)]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    if high - low < 1e-9:
        low, high = low - 1.0, high + 1.0
    pad = (high - low) * 0.08
    low, high = low - pad, high + pad
    x_low, x_high = (min(xs), max(xs)) if xs else (0.0, 1.0)
    if x_high - x_low < 1e-9:
        x_high = x_low + 1.0

    def px(x: float) -> float:
        return LEFT + (x - x_low) / (x_high - x_low) * (WIDTH - LEFT - RIGHT)

    def py(y: float) -> float:
        return TOP + (high - scale_y(y)) / (high - low) * (HEIGHT - TOP - BOTTOM)

    esc = html.escape
    out = [
        f'<svg class="plot" id="{esc(css_id)}" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{esc(title)}">',
        f'<text class="title" x="{LEFT}" y="16">{esc(title)}</text>',
        f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - RIGHT}" y2="{HEIGHT - BOTTOM}" '
        'stroke="#adb5bd"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}" stroke="#adb5bd"/>',
    ]
    for tick in _ticks(low, high):
        label = f"{10**tick:.3g}" if log else f"{tick:.3g}"
        y = TOP + (high - tick) / (high - low) * (HEIGHT - TOP - BOTTOM)
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#f1f3f5"/>')
    out.append(
        f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 8}" text-anchor="end">seconds since the analysis started '
        f"({x_low:.0f}–{x_high:.0f})</text>"
    )
    if band is not None:
        edges = [
            (x, lo, hi) for x, lo, hi in zip(xs, *band, strict=True) if lo is not None and hi is not None
        ]
        if edges:
            upper = " ".join(f"{px(x):.1f},{py(hi):.1f}" for x, _, hi in edges)
            lower = " ".join(f"{px(x):.1f},{py(lo):.1f}" for x, lo, _ in reversed(edges))
            out.append(
                f'<polygon class="band" points="{upper} {lower}" fill="{COLOURS["band"]}" opacity="0.7"/>'
            )
    for y, label, colour in hlines:
        out.append(
            f'<line class="level" x1="{LEFT}" y1="{py(y):.1f}" x2="{WIDTH - RIGHT}" y2="{py(y):.1f}" '
            f'stroke="{colour}" stroke-dasharray="5,4"/>'
        )
        out.append(f'<text x="{WIDTH - RIGHT - 4}" y="{py(y) - 4:.1f}" text-anchor="end">{esc(label)}</text>')
    if decided_x is not None:
        out.append(
            f'<line class="decision" x1="{px(decided_x):.1f}" y1="{TOP}" x2="{px(decided_x):.1f}" '
            f'y2="{HEIGHT - BOTTOM}" stroke="#212529" stroke-width="1.5"/>'
        )
    legend_x = LEFT + 8
    for label, ys, colour in lines:
        for segment in _segments(xs, ys):
            points = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in segment)
            out.append(
                f'<polyline class="series" points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>'
            )
        out.append(
            f'<text x="{legend_x}" y="{TOP + 12}" fill="{colour}" style="fill:{colour}">{esc(label)}</text>'
        )
        legend_x += 8 + 7 * len(label)
    out.append("</svg>")
    return "\n".join(out)


def _segments(xs: Sequence[float], ys: Sequence[float | None]) -> list[list[tuple[float, float]]]:
    segments: list[list[tuple[float, float]]] = [[]]
    for x, y in zip(xs, ys, strict=True):
        if y is None or not math.isfinite(y):
            if segments[-1]:
                segments.append([])
            continue
        segments[-1].append((x, y))
    return [s for s in segments if s]


def _ticks(low: float, high: float, count: int = 4) -> list[float]:
    step = (high - low) / count
    return [low + step * (i + 0.5) for i in range(count)]
