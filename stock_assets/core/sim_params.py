"""The parameters of a simulation: one combination (`SimParams`), a grid of them
(`SimGrid`), fill presets and regime filters. The engine (`simulation`) and its kernels
(`sim_kernels`) both read these; neither imports the other for them."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Literal

TargetKind = Literal["regressor", "classifier"]
FillPrice = Literal["close", "mid"]
TargetTransform = Literal["log_return", "pct_change", "price"]
_AXES = {
    "fills": "fill",
    "regimes": "regime",
    "bot": "bot",
    "zscore": "zscore",
    "volnorm": "volnorm",
    "thresholds": "threshold",
}
_SHARED = (
    "target_kind",
    "zscore_window",
    "zscore_limit",
    "vol_window",
    "vol_median_window",
    "bot_threshold",
    "fee_per_trade",
    "fee_bps",
    "fractional",
    "initial_cash",
)


class InvalidSimulationInput(ValueError):
    """Bars, predictions or parameters the engine cannot simulate."""


@dataclass(frozen=True)
class FillPreset:
    """Fill `delay_bars` after the signal bar, at that bar's close or midpoint."""

    delay_bars: int = 0
    price: FillPrice = "close"

    def __post_init__(self) -> None:
        if not isinstance(self.delay_bars, int) or self.delay_bars < 0:
            raise InvalidSimulationInput(f"delay_bars {self.delay_bars!r}: an int >= 0")
        if self.price not in ("close", "mid"):
            raise InvalidSimulationInput(f"fill price {self.price!r}: 'close' or 'mid'")


FILL_AT_CLOSE = FillPreset(0, "close")
FILL_REALISTIC = FillPreset(4, "mid")


@dataclass(frozen=True)
class RegimeFilter:
    """Trade only while regime `column` is one of `allowed`; elsewhere exit and stay out."""

    column: str
    allowed: tuple[int, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "allowed", tuple(sorted({int(a) for a in self.allowed})))


@dataclass(frozen=True)
class SimParams:
    """One combination of the grid."""

    target_kind: TargetKind = "regressor"
    threshold: float = 0.0
    zscore: bool = False
    zscore_window: int = 100
    zscore_limit: float = 3.0
    volnorm: bool = False
    vol_window: int = 30
    vol_median_window: int = 390
    regime: RegimeFilter | None = None
    bot: bool = False
    bot_threshold: float = 0.55
    fill: FillPreset = FILL_AT_CLOSE
    fee_per_trade: float = 0.02
    fee_bps: float = 0.0
    fractional: bool = False
    initial_cash: float = 10_000.0

    def as_row(self) -> dict[str, object]:
        """The parameters as flat `sim_runs` columns."""
        row: dict[str, object] = {k: getattr(self, k) for k in _SHARED}
        row.update(threshold=self.threshold, zscore=self.zscore, volnorm=self.volnorm)
        row.update(bot=self.bot, fill_delay=self.fill.delay_bars, fill_price=self.fill.price)
        row["regime_column"] = self.regime.column if self.regime else None
        row["regime_allowed"] = ",".join(map(str, self.regime.allowed)) if self.regime else None
        return row


@dataclass(frozen=True)
class SimGrid:
    """The axes (tuples) and shared settings of a grid; `combinations()` is the product."""

    target_kind: TargetKind = "regressor"
    thresholds: tuple[float, ...] = (0.0,)
    zscore: tuple[bool, ...] = (False,)
    zscore_window: int = 100
    zscore_limit: float = 3.0
    volnorm: tuple[bool, ...] = (False,)
    vol_window: int = 30
    vol_median_window: int = 390
    regimes: tuple[RegimeFilter | None, ...] = (None,)
    bot: tuple[bool, ...] = (False,)
    bot_threshold: float = 0.55
    fills: tuple[FillPreset, ...] = (FILL_AT_CLOSE,)
    fee_per_trade: float = 0.02
    fee_bps: float = 0.0
    fractional: bool = False
    initial_cash: float = 10_000.0
    random_draws: int = 8
    random_seed: int = 0
    hit_window: int = 100

    def __post_init__(self) -> None:
        checks = {
            "target_kind": self.target_kind in ("regressor", "classifier"),
            "thresholds": all(math.isfinite(t) and t >= 0 for t in self.thresholds),
            "windows": self.zscore_window >= 2
            and min(self.vol_window, self.vol_median_window) >= 1,
            "zscore_limit": self.zscore_limit > 0,
            "fees": self.fee_per_trade >= 0 and self.fee_bps >= 0,
            "initial_cash": self.initial_cash > 0,
            "random": 0 <= self.random_draws <= 1000 and self.random_seed >= 0,
            "axes": all(len(getattr(self, axis)) > 0 for axis in _AXES),
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise InvalidSimulationInput(
                f"invalid grid settings {bad}: kind regressor|classifier, thresholds >= 0, "
                "zscore_window >= 2, vol windows >= 1, zscore_limit > 0, fees >= 0, cash > 0, "
                "0 <= random_draws <= 1000, random_seed >= 0, non-empty axes"
            )

    @classmethod
    def of(cls, params: SimParams) -> SimGrid:
        """The one-combination grid of `params`."""
        axes = {axis: (getattr(params, name),) for axis, name in _AXES.items()}
        return cls(**axes, **{k: getattr(params, k) for k in _SHARED})

    def combinations(self) -> list[SimParams]:
        """Every combination, thresholds varying fastest (a classifier's collapse to one)."""
        axes = {axis: tuple(dict.fromkeys(getattr(self, axis))) for axis in _AXES}
        if self.target_kind == "classifier":
            axes.update(thresholds=(0.0,), zscore=(False,), volnorm=(False,))
        shared = {k: getattr(self, k) for k in _SHARED}
        names = [_AXES[axis] for axis in axes]
        return [
            SimParams(**shared, **dict(zip(names, values, strict=True)))
            for values in itertools.product(*axes.values())
        ]


@dataclass
class SimRun:
    """One combination's parameters and metrics (see metrics.METRIC_NAMES)."""

    params: SimParams
    metrics: dict[str, float]
