"""Seeded hyperparameter search within a budget of trials and of time.

The candidate parameter sets are drawn up front from the seed, trial 0 always being the
defaults, and are tried in that order; the best by the objective (validation log loss by
default, lower is better) wins, ties going to the earlier trial. So for a given seed the
result depends only on how many trials ran. The time budget can cut the search short, and
how many trials fit in it depends on the machine: the number of trials run and why the
search stopped are recorded, and `max_trials` bounds the search on every machine, so a
search that stops on `max_trials` is reproducible byte for byte.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np

T = TypeVar("T")

# name: (kind, low, high); 'int' inclusive, 'log' log-uniform, 'float' uniform.
SEARCH_SPACE: dict[str, tuple[str, float, float]] = {
    "max_depth": ("int", 2, 6),
    "eta": ("log", 0.03, 0.3),
    "min_child_weight": ("log", 1.0, 20.0),
    "subsample": ("float", 0.6, 1.0),
    "colsample_bytree": ("float", 0.6, 1.0),
    "lambda": ("log", 0.1, 10.0),
}


@dataclass(frozen=True)
class TuningConfig:
    """At most `max_trials` trials, and no new trial once `time_budget_s` has passed."""

    max_trials: int = 8
    time_budget_s: float = 120.0

    def __post_init__(self) -> None:
        if self.max_trials < 1:
            raise ValueError(f"max_trials must be >= 1, got {self.max_trials}")
        if self.time_budget_s <= 0:
            raise ValueError(f"time_budget_s must be > 0, got {self.time_budget_s}")


def candidate_params(
    n: int, seed: int, space: dict[str, tuple[str, float, float]] | None = None
) -> list[dict[str, Any]]:
    """n parameter sets: {} (the defaults) first, then draws from `space` seeded by `seed`.

    Values are rounded (4 significant digits) so they read well in the card and are the
    same on every platform.
    """
    space = SEARCH_SPACE if space is None else space
    rng = np.random.default_rng(seed)
    out: list[dict[str, Any]] = [{}]
    for _ in range(n - 1):
        params: dict[str, Any] = {}
        for name, (kind, low, high) in space.items():  # dict order: the same draws every time
            u = float(rng.random())
            if kind == "int":
                params[name] = int(low + math.floor(u * (high - low + 1)))
            elif kind == "log":
                value = math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
                params[name] = float(f"{value:.4g}")
            elif kind == "float":
                params[name] = float(f"{low + u * (high - low):.4g}")
            else:
                raise ValueError(f"unknown kind {kind!r} for {name}")
        out.append(params)
    return out


@dataclass(frozen=True)
class Trial:
    index: int
    params: dict[str, Any]
    objective: float
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TuningResult(Generic[T]):
    trials: list[Trial]
    best_index: int
    best: T
    stopped_by: str  # 'max_trials' or 'time_budget'
    seconds: float  # wall-clock time (not reproducible: keep it out of the model card)

    @property
    def best_trial(self) -> Trial:
        return self.trials[self.best_index]

    def card(self, config: TuningConfig, seed: int, objective: str) -> dict[str, Any]:
        """What the model card records: reproducible facts only (no timings)."""
        return {
            "method": "seeded random search, trial 0 = defaults, early stopping in each trial",
            "objective": objective,
            "seed": int(seed),
            "max_trials": config.max_trials,
            "time_budget_s": config.time_budget_s,
            "trials_run": len(self.trials),
            "stopped_by": self.stopped_by,
            "reproducible": self.stopped_by == "max_trials",
            "best_trial": self.best_index,
            "best_params": self.best_trial.params,
            "search_space": {k: list(v) for k, v in SEARCH_SPACE.items()},
            "trials": [asdict(t) for t in self.trials],
        }


def tune(
    evaluate: Callable[[dict[str, Any]], tuple[float, T, dict[str, Any]]],
    config: TuningConfig,
    seed: int,
    clock: Callable[[], float] = time.monotonic,
) -> TuningResult[T]:
    """Run trials in seeded order until max_trials or the time budget; keep the best.

    `evaluate(params)` fits with those parameter overrides and returns (objective to
    minimise, the fitted thing, a small summary for the card). The first trial always runs.
    A NaN objective never wins.
    """
    start = clock()
    trials: list[Trial] = []
    best_index, best_value, best = -1, math.inf, None
    stopped_by = "max_trials"
    for index, params in enumerate(candidate_params(config.max_trials, seed)):
        if index > 0 and clock() - start >= config.time_budget_s:
            stopped_by = "time_budget"
            break
        value, fitted, summary = evaluate(params)
        value = float(value)
        trials.append(Trial(index, params, value, summary))
        if best_index < 0 or value < best_value or (math.isnan(best_value) and value == value):
            best_index, best_value, best = index, value, fitted  # NaN never wins over a number
    return TuningResult(
        trials=trials,
        best_index=best_index,
        best=best,  # type: ignore[arg-type]
        stopped_by=stopped_by,
        seconds=clock() - start,
    )
