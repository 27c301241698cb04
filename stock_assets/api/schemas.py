"""The API's answers as pydantic models, so the OpenAPI document describes each one."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Health(BaseModel):
    status: str = "ok"


class SymbolEntry(BaseModel):
    symbol: str
    valid: bool
    error: str | None = Field(default=None, description="Why a stored key is not a symbol.")


class SymbolsPage(BaseModel):
    total: int
    limit: int
    offset: int
    symbols: list[SymbolEntry]


class SymbolChange(BaseModel):
    symbol: str
    changed: bool = Field(description="False when there was nothing to add or remove.")


class MinuteBar(BaseModel):
    ts: str = Field(description="Bar-open time, ISO 8601 UTC.")
    open: float | None
    high: float | None
    low: float | None
    close: float | None
    volume: float | None
    vwap: float | None
    trade_count: int | None
    source: str | None
    is_filled: bool | None


class DerivedBar(BaseModel):
    ts: str = Field(description="Bucket-open time, ISO 8601 UTC.")
    open: float | None
    high: float | None
    low: float | None
    close: float | None
    volume: float | None
    vwap: float | None
    trade_count: int | None
    minutes: int | None
    filled_minutes: int | None


class Bars(BaseModel):
    symbol: str
    interval: str
    count: int
    bars: list[MinuteBar] | list[DerivedBar] = Field(description="Oldest first.")


class GapDay(BaseModel):
    date: str
    missing_minutes: int
    filled_minutes: int
    stored: bool


class Gaps(BaseModel):
    symbol: str
    start: str
    end: str
    sessions: int
    missing_minutes: int
    filled_minutes: int
    total: int = Field(description="Days with missing or filled minutes, or not stored.")
    limit: int
    offset: int
    days: list[GapDay]


class IngestStatusRow(BaseModel):
    symbol: str
    date: str
    status: str
    provider: str | None
    rows: int
    missing_minutes: int
    message: str | None
    updated_at: str


class IngestStatusPage(BaseModel):
    symbol: str
    total: int
    limit: int
    offset: int
    days: list[IngestStatusRow]


class Features(BaseModel):
    symbol: str
    columns: list[str]
    rows: list[dict[str, Any]] = Field(description="Newest rows, oldest first.")


class FoldOption(BaseModel):
    fold_config: str = Field(description='Canonical JSON, e.g. {"train_days":30,"test_days":5}.')
    column: str = Field(description="The feature column holding train/test, e.g. fold_30_5.")
    train_days: int
    test_days: int
    symbols: list[str]


class FeatureSymbol(BaseModel):
    symbol: str
    first_date: str
    last_date: str


class FeatureColumn(BaseModel):
    name: str
    category: str | None = None
    dtype: str | None = None
    warmup_bars: int | None = None
    version: int | None = None


class RunRef(BaseModel):
    run_id: str
    job: str
    status: str
    dagster_url: str
    error: str | None = None


class Launched(BaseModel):
    run_id: str = Field(description="The Dagster run (the last one when several ran).")
    dagster_url: str
    status: str
    error: str | None = None
    runs: list[RunRef] = Field(description="Every run launched, in order.")
    outputs: dict[str, Any] = Field(description="What the runs produced (model ids, counts).")


class RunInfo(BaseModel):
    run_id: str
    job: str
    status: str
    dagster_url: str
    tags: dict[str, str]
    created_at: str | None
    updated_at: str | None
    started_at: str | None
    ended_at: str | None
    evolution: dict[str, Any] | None = Field(
        default=None, description="For an evolution_job run: its evolution_runs row."
    )


class RunsPage(BaseModel):
    total: int
    limit: int
    offset: int
    runs: list[RunInfo]


class Leaderboard(BaseModel):
    by: str
    symbol: str | None
    limit: int
    offset: int
    rows: list[dict[str, Any]] = Field(description="sim_runs rows, best first.")


class ModelSummary(BaseModel):
    model_id: str
    symbol: str
    mlflow_run_id: str
    parent: str | None
    group_id: str | None
    algorithm: str | None
    target: str | None
    evaluation: str | None
    metrics: dict[str, float]


class ModelsPage(BaseModel):
    total: int
    limit: int
    offset: int
    models: list[ModelSummary]


class ModelDetail(ModelSummary):
    url: str = Field(description="The model's run in the MLflow UI.")
    tags: dict[str, str]
    params: dict[str, str]
    top_features: list[dict[str, Any]]


class DaemonInfo(BaseModel):
    daemon: str
    required: bool
    healthy: bool | None
    last_heartbeat: str | None


class InstigatorInfo(BaseModel):
    name: str
    kind: str = Field(description="sensor or schedule")
    status: str
    last_tick: str | None
    last_tick_status: str | None


class Freshness(BaseModel):
    symbol: str
    last_bar: str | None = Field(description="Open time of the newest stored 1m bar.")
    lag_minutes: float | None = Field(
        description="Minutes from last_bar to the session clock (the newest completed bar "
        "of the current session, or the last bar of the last session)."
    )
    lag_seconds: float | None = Field(description="Seconds from last_bar to now.")
    sessions_behind: int | None = Field(
        description="XNYS sessions after the newest stored day, up to the session clock's."
    )
    missing_minutes_today: int | None = Field(
        description="Today's session minutes up to the clock not stored (null: no session today)."
    )
    stale: bool = Field(
        description="In a session: lag_minutes over the stall threshold (or no bar); "
        "outside: a whole session missing."
    )


class Alert(BaseModel):
    kind: str = Field(description="run_failure, stall, ...")
    subject: str = Field(description="What it is about: a run id, a sensor, a symbol.")
    message: str
    fired_at: str | None
    updated_at: str | None


class Status(BaseModel):
    now: str
    session_open: bool = Field(description="An XNYS session is open now.")
    session_clock: str | None = Field(
        description="Open of the newest completed bar of the current or last session."
    )
    stall_minutes: int = Field(description="STOCK_ASSETS_STALL_MINUTES (default 5).")
    stale: bool = Field(description="A symbol is stale during an open session.")
    daemons: list[DaemonInfo]
    daemons_healthy: bool
    instigators: list[InstigatorInfo]
    live_sensor: InstigatorInfo | None = Field(
        description="live_bars_sensor and its last tick (null: never started)."
    )
    symbols: list[Freshness]
    alerts: list[Alert] = Field(description="Alerts firing now, oldest first.")


class Stats(BaseModel):
    symbols: int
    bar_days: int
    feature_days: int
    sim_runs: int
    models: int
    runs: dict[str, int] = Field(description="Dagster runs by status.")
