"""Charts drawn on the server as SVG (no script, no library from elsewhere): bars of attempts
per time slice (failures in the darker part), and p50/p99 latency as lines with a dot per
slice. Each has its scale and its time span written on it."""

from __future__ import annotations

from markupsafe import Markup, escape

from app.activity import Activity

WIDTH, HEIGHT, TOP, BOTTOM, LEFT = 600, 160, 18, 18, 4
PLOT = HEIGHT - TOP - BOTTOM


def attempts(activity: Activity, title: str) -> Markup:
    buckets = activity.buckets
    peak = max((b.attempts for b in buckets), default=0) or 1
    step = (WIDTH - 2 * LEFT) / max(len(buckets), 1)
    bars = []
    for i, b in enumerate(buckets):
        x, width = LEFT + i * step, max(step - 1, 1)
        for kind, count in (("ok", b.attempts), ("failed", b.attempts - b.ok)):
            if count:
                height = PLOT * count / peak
                bars.append(f'<rect class="{kind}" x="{x:.1f}" y="{TOP + PLOT - height:.1f}" '
                            f'width="{width:.1f}" height="{height:.1f}"/>')  # fmt: skip
    return _svg(title, f"peak {peak} attempts per slice", activity, "".join(bars))


def latency(activity: Activity, title: str) -> Markup:
    values = [b.p99_ms for b in activity.buckets if b.p99_ms is not None]
    top = max(values, default=0.0) or 1.0
    step = (WIDTH - 2 * LEFT) / max(len(activity.buckets) - 1, 1)
    marks = []
    for name in ("p50_ms", "p99_ms"):
        points = [
            (LEFT + i * step, TOP + PLOT - PLOT * value / top)
            for i, b in enumerate(activity.buckets)
            if (value := getattr(b, name)) is not None
        ]
        kind = name[:3]
        if len(points) > 1:
            joined = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            marks.append(f'<polyline class="{kind}" points="{joined}"/>')
        marks += [f'<circle class="{kind}" cx="{x:.1f}" cy="{y:.1f}" r="3"/>' for x, y in points]
    return _svg(title, f"top {top:.0f} ms", activity, "".join(marks))


def _svg(title: str, scale: str, activity: Activity, body: str) -> Markup:
    minutes = (activity.until - activity.since) // 60_000
    span = f"{minutes // 60} h ago" if minutes >= 120 else f"{minutes} min ago"
    label = escape(f"{title} ({scale})")
    axis = (
        f'<text x="{LEFT}" y="12">{escape(scale)}</text>'
        f'<text x="{LEFT}" y="{HEIGHT - 4}">{span}</text>'
        f'<text x="{WIDTH - LEFT}" y="{HEIGHT - 4}" text-anchor="end">now</text>'
        f'<line x1="0" y1="{TOP + PLOT}" x2="{WIDTH}" y2="{TOP + PLOT}"/>'
    )
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{label}">'
        f"<title>{label}</title>{axis}{body}</svg>"
    )
