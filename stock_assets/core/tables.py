"""The records the catalog keeps (ingest status, feature metadata and folds, simulation
runs, the evolution's lineage), each defined once: columns, types, keys and checks.

DDL is rendered from these definitions per SQL dialect (DuckDB today; PostgreSQL names
DOUBLE `DOUBLE PRECISION`), so a second backend needs no second copy of any table.
"""

from __future__ import annotations

from dataclasses import dataclass

from stock_assets.core.ingest import STATUSES

_DIALECT_TYPES = {"postgresql": {"DOUBLE": "DOUBLE PRECISION"}}


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # VARCHAR, DATE, INTEGER, BIGINT, DOUBLE, BOOLEAN, TIMESTAMPTZ
    not_null: bool = False
    check: str | None = None


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]

    def ddl(self, dialect: str = "duckdb") -> str:
        types = _DIALECT_TYPES.get(dialect, {})
        lines = []
        for column in self.columns:
            line = f"    {column.name} {types.get(column.type, column.type)}"
            line += " NOT NULL" if column.not_null or column.name in self.primary_key else ""
            line += f" CHECK ({column.check})" if column.check else ""
            lines.append(line)
        lines.append(f"    PRIMARY KEY ({', '.join(self.primary_key)})")
        return f"CREATE TABLE IF NOT EXISTS {self.name} (\n" + ",\n".join(lines) + "\n)"


def _columns(spec: str) -> tuple[Column, ...]:
    """Columns from lines of `name TYPE [NOT NULL]`."""
    columns = []
    for line in spec.strip().splitlines():
        name, kind, *rest = line.split()
        columns.append(Column(name, kind, not_null=rest == ["NOT", "NULL"]))
    return tuple(columns)


_STATUS_CHECK = "status IN (" + ", ".join(f"'{s}'" for s in STATUSES) + ")"
INGEST_STATUS = Table(
    "ingest_status",
    (
        Column("symbol", "VARCHAR"),
        Column("date", "DATE"),
        Column("status", "VARCHAR", not_null=True, check=_STATUS_CHECK),
        *_columns("""
            provider VARCHAR
            rows INTEGER NOT NULL
            missing_minutes INTEGER NOT NULL
            message VARCHAR
            updated_at TIMESTAMPTZ NOT NULL
        """),
    ),
    ("symbol", "date"),
)
FEATURE_METADATA = Table(
    "feature_metadata",
    _columns("""
        feature VARCHAR
        version INTEGER
        params VARCHAR NOT NULL
        params_hash VARCHAR
        code_ref VARCHAR NOT NULL
        code_hash VARCHAR
        category VARCHAR
        warmup_bars INTEGER
        dtype VARCHAR
        git_revision VARCHAR
        created_at TIMESTAMPTZ NOT NULL
    """),
    ("feature", "version", "params_hash", "code_hash"),
)
FEATURE_FOLDS = Table(
    "feature_folds",
    _columns("""
        symbol VARCHAR
        fold_config VARCHAR
        first_date DATE NOT NULL
        last_date DATE NOT NULL
    """),
    ("symbol", "fold_config"),
)
SIM_RUNS = Table(
    "sim_runs",
    _columns("""
        run_id VARCHAR
        grid_id VARCHAR NOT NULL
        combo INTEGER NOT NULL
        symbol VARCHAR NOT NULL
        model_id VARCHAR NOT NULL
        mlflow_run_id VARCHAR
        created_at TIMESTAMPTZ NOT NULL
        bars BIGINT NOT NULL
        start_ts TIMESTAMPTZ
        end_ts TIMESTAMPTZ
        target_kind VARCHAR NOT NULL
        threshold DOUBLE NOT NULL
        zscore BOOLEAN NOT NULL
        zscore_window INTEGER NOT NULL
        zscore_limit DOUBLE NOT NULL
        volnorm BOOLEAN NOT NULL
        vol_window INTEGER NOT NULL
        vol_median_window INTEGER NOT NULL
        regime_column VARCHAR
        regime_allowed VARCHAR
        bot BOOLEAN NOT NULL
        bot_threshold DOUBLE NOT NULL
        fill_delay INTEGER NOT NULL
        fill_price VARCHAR NOT NULL
        fee_per_trade DOUBLE NOT NULL
        fee_bps DOUBLE NOT NULL
        fractional BOOLEAN NOT NULL
        initial_cash DOUBLE NOT NULL
        final_equity DOUBLE
        total_return DOUBLE
        buy_hold_return DOUBLE
        excess_vs_buy_hold DOUBLE
        random_return DOUBLE
        excess_vs_random DOUBLE
        sharpe DOUBLE
        sortino DOUBLE
        max_drawdown DOUBLE
        exposure DOUBLE
        trades INTEGER
        fills INTEGER
        open_position BOOLEAN
        win_rate DOUBLE
        profit_factor DOUBLE
        sqn DOUBLE
        sqn_100 DOUBLE
        expectancy DOUBLE
        weekly_consistency DOUBLE
        hit_rate DOUBLE
        fees_paid DOUBLE
    """),
    ("run_id",),
)
# The evolution (stock_assets.pipelines.evolution). Keys are deterministic, so a resumed or
# re-executed evolution rewrites its rows instead of adding copies.
EVOLUTION_RUNS = Table(
    "evolution_runs",
    _columns("""
        evolution_id VARCHAR
        dagster_run_id VARCHAR
        symbol VARCHAR NOT NULL
        status VARCHAR NOT NULL
        stop_reason VARCHAR
        reason VARCHAR
        max_generations INTEGER NOT NULL
        current_generation INTEGER
        best_model_id VARCHAR
        best_sqn DOUBLE
        promoted_model_id VARCHAR
        trials INTEGER
        seed_model_id VARCHAR
        mlflow_run_id VARCHAR
        config VARCHAR NOT NULL
        created_at TIMESTAMPTZ NOT NULL
        updated_at TIMESTAMPTZ NOT NULL
    """),
    ("evolution_id",),
)
EVOLUTION_LOG = Table(
    "evolution_log",
    _columns("""
        evolution_id VARCHAR
        generation INTEGER
        candidate INTEGER
        parent_model_id VARCHAR
        parent_sqn DOUBLE
        child_model_id VARCHAR NOT NULL
        fingerprint VARCHAR NOT NULL
        reused BOOLEAN NOT NULL
        origin VARCHAR NOT NULL
        algorithm VARCHAR NOT NULL
        params VARCHAR NOT NULL
        remaining_features VARCHAR NOT NULL
        pruned_features VARCHAR NOT NULL
        pruning_reason VARCHAR
        best_grid_id VARCHAR
        best_combo INTEGER
        sqn DOUBLE
        profit_factor DOUBLE
        trades INTEGER
        weekly_consistency DOUBLE
        max_drawdown DOUBLE
        excess_vs_buy_hold DOUBLE
        excess_vs_random DOUBLE
        deflated_sharpe DOUBLE
        pareto BOOLEAN NOT NULL
        trials INTEGER NOT NULL
        promoted BOOLEAN NOT NULL
        reason VARCHAR NOT NULL
        created_at TIMESTAMPTZ NOT NULL
    """),
    ("evolution_id", "generation", "candidate"),
)
MODEL_FINGERPRINTS = Table(
    "model_fingerprints",
    _columns("""
        fingerprint VARCHAR
        model_id VARCHAR NOT NULL
        symbol VARCHAR NOT NULL
        algorithm VARCHAR NOT NULL
        features VARCHAR NOT NULL
        params VARCHAR NOT NULL
        target VARCHAR NOT NULL
        transform VARCHAR NOT NULL
        mlflow_run_id VARCHAR NOT NULL
        created_at TIMESTAMPTZ NOT NULL
    """),
    ("fingerprint",),
)
PROMOTED_MODELS = Table(
    "promoted_models",
    _columns("""
        model_id VARCHAR
        evolution_id VARCHAR NOT NULL
        generation INTEGER NOT NULL
        symbol VARCHAR NOT NULL
        sqn DOUBLE
        profit_factor DOUBLE
        trades INTEGER
        weekly_consistency DOUBLE
        sharpe DOUBLE
        total_return DOUBLE
        excess_vs_buy_hold DOUBLE
        excess_vs_random DOUBLE
        deflated_sharpe DOUBLE
        trials INTEGER NOT NULL
        threshold DOUBLE
        regime VARCHAR
        grid_id VARCHAR NOT NULL
        combo INTEGER NOT NULL
        simulation_config VARCHAR NOT NULL
        features VARCHAR NOT NULL
        params VARCHAR NOT NULL
        lineage VARCHAR NOT NULL
        registered_model VARCHAR
        registered_version VARCHAR
        mlflow_run_id VARCHAR NOT NULL
        promoted_at TIMESTAMPTZ NOT NULL
    """),
    ("model_id", "evolution_id"),
)
ALERT_STATUSES = ("firing", "cleared")
# One row per (kind, subject): a firing alert is updated in place, never duplicated.
ALERTS = Table(
    "alerts",
    (
        Column("kind", "VARCHAR"),  # run_failure, stall, ...
        Column("subject", "VARCHAR"),  # what it is about: a run id, a sensor, a symbol
        Column("status", "VARCHAR", not_null=True,
               check="status IN (" + ", ".join(f"'{s}'" for s in ALERT_STATUSES) + ")"),
        *_columns("""
            message VARCHAR NOT NULL
            details VARCHAR
            fired_at TIMESTAMPTZ NOT NULL
            cleared_at TIMESTAMPTZ
            updated_at TIMESTAMPTZ NOT NULL
            sent BOOLEAN
        """),
    ),
    ("kind", "subject"),
)  # fmt: skip
TABLES: dict[str, Table] = {
    table.name: table
    for table in (INGEST_STATUS, FEATURE_METADATA, FEATURE_FOLDS, SIM_RUNS, EVOLUTION_RUNS,
                  EVOLUTION_LOG, MODEL_FINGERPRINTS, PROMOTED_MODELS, ALERTS)
}  # fmt: skip
