"""Geometry of the score-over-time chart, drawn as inline SVG by the customer template.

Only numbers and dates come out of here; the template places them (autoescaped), so no
customer text is ever written into markup by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 12, 30


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    day: str
    probability: float
    tier: str
    model_version: str


def score_chart(history: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """Points, the polyline, y gridlines (0..100%) and x labels for ``history`` rows
    (day, churn_probability, risk_tier, model_version), oldest first; None when empty."""
    rows = [r for r in history if r.get("churn_probability") is not None]
    if not rows:
        return None
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = inner_w / max(1, len(rows) - 1)
    points = [
        Point(
            x=round(LEFT + (i * step if len(rows) > 1 else inner_w / 2), 1),
            y=round(TOP + (1 - float(r["churn_probability"])) * inner_h, 1),
            day=str(r["day"]),
            probability=float(r["churn_probability"]),
            tier=str(r.get("risk_tier") or ""),
            model_version=str(r.get("model_version") or ""),
        )
        for i, r in enumerate(rows)
    ]
    every = max(1, len(points) // 6)
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "right": WIDTH - RIGHT,
        "bottom": HEIGHT - BOTTOM,
        "top": TOP,
        "points": points,
        "polyline": " ".join(f"{p.x},{p.y}" for p in points),
        "grid": [
            {"y": round(TOP + (1 - v) * inner_h, 1), "label": f"{v * 100:.0f}%"}
            for v in (0.0, 0.25, 0.5, 0.75, 1.0)
        ],
        # every ``every``-th day, and the last one unless it would touch the label before it
        "labels": [
            p
            for i, p in enumerate(points)
            if i % every == 0 or (i == len(points) - 1 and i % every >= every / 2)
        ],
    }
