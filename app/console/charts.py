"""Charts drawn on the server as SVG (no script, no library from elsewhere): bars of attempts
per time slice (failures in the darker part), and a line of p50 and p99 latency."""

from __future__ import annotations

from markupsafe import Markup, escape

from app.activity import Activity

WIDTH, HEIGHT, PAD = 600, 140, 4


def attempts(activity: Activity, title: str) -> Markup:
    buckets = activity.buckets
    top = max((b.attempts for b in buckets), default=0) or 1
    step = (WIDTH - 2 * PAD) / max(len(buckets), 1)
    bars = []
    for i, b in enumerate(buckets):
        x = PAD + i * step
        total_h = (HEIGHT - 2 * PAD) * b.attempts / top
        failed_h = (HEIGHT - 2 * PAD) * (b.attempts - b.ok) / top
        bars.append(
            f'<rect class="ok" x="{x:.1f}" y="{HEIGHT - PAD - total_h:.1f}" '
            f'width="{max(step - 1, 1):.1f}" height="{total_h:.1f}"/>'
        )
        if failed_h:
            bars.append(
                f'<rect class="failed" x="{x:.1f}" y="{HEIGHT - PAD - failed_h:.1f}" '
                f'width="{max(step - 1, 1):.1f}" height="{failed_h:.1f}"/>'
            )
    return _svg(title, f"peak {top} per slice", "".join(bars))


def latency(activity: Activity, title: str) -> Markup:
    values = [b.p99_ms for b in activity.buckets if b.p99_ms is not None]
    top = max(values, default=0.0) or 1.0
    step = (WIDTH - 2 * PAD) / max(len(activity.buckets) - 1, 1)
    lines = []
    for name in ("p50_ms", "p99_ms"):
        points = [
            f"{PAD + i * step:.1f},{HEIGHT - PAD - (HEIGHT - 2 * PAD) * value / top:.1f}"
            for i, b in enumerate(activity.buckets)
            if (value := getattr(b, name)) is not None
        ]
        if points:
            lines.append(f'<polyline class="{name[:3]}" points="{" ".join(points)}"/>')
    return _svg(title, f"top {top:.0f} ms", "".join(lines))


def _svg(title: str, note: str, body: str) -> Markup:
    label = escape(f"{title} ({note})")
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{label}">'
        f"<title>{label}</title>{body}</svg>"
    )
