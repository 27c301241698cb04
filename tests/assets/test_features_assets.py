from __future__ import annotations

import datetime as dt
import hashlib

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest

from stock_assets.core import calendar
from stock_assets.jobs.launcher import symbol_days_tags as range_tags
from stock_assets.storage.warehouse import Warehouse

HISTORY = calendar.sessions(dt.date(2024, 2, 26), dt.date(2024, 3, 15))
TARGET = HISTORY[5:]  # features for the last 10 sessions, history before
DAY_RANGE = {"dagster/asset_partition_range_start": TARGET[0].isoformat(),
             "dagster/asset_partition_range_end": TARGET[-1].isoformat()}  # fmt: skip


@pytest.fixture
def ingested(home):
    """QQQ, SPY, VIXY bars ingested for HISTORY on a test instance."""
    from stock_assets.definitions import defs

    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("symbols", ["QQQ", "SPY", "VIXY"])
        for symbol in ("QQQ", "SPY", "VIXY"):
            tags = range_tags(symbol, HISTORY[0], HISTORY[-1])
            assert (
                defs.resolve_job_def("ingest_job")
                .execute_in_process(instance=instance, tags=tags)
                .success
            )
        yield defs, instance


def build(defs, instance, symbol, days, regimes=True):
    if regimes:
        tags = {"dagster/asset_partition_range_start": days[0].isoformat(),
                "dagster/asset_partition_range_end": days[-1].isoformat()}  # fmt: skip
        assert (
            defs.resolve_job_def("regimes_job")
            .execute_in_process(instance=instance, tags=tags)
            .success
        )
    result = defs.resolve_job_def("features_job").execute_in_process(
        instance=instance, tags=range_tags(symbol, days[0], days[-1])
    )
    assert result.success
    return result


def stored_features(home, symbol, days):
    return Warehouse(home).lake.read_days("features", symbol, days)


def lake_digest(home, dataset):
    files = sorted((home / "lake" / dataset).rglob("*.parquet"))
    return {str(f.relative_to(home)): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def test_day_by_day_builds_equal_one_build_over_the_range(home, ingested):
    defs, instance = ingested
    build(defs, instance, "SPY", TARGET)
    whole = stored_features(home, "SPY", TARGET)
    for path in (home / "lake" / "features").rglob("*.parquet"):
        path.unlink()
    for day in TARGET:
        build(defs, instance, "SPY", [day])
    daily = stored_features(home, "SPY", TARGET)
    assert list(daily.columns) == list(whole.columns)
    pd.testing.assert_frame_equal(daily, whole, check_exact=False, rtol=1e-9, atol=1e-12)
    assert (daily["has_vix_context"] == 1).all() and (daily["has_qqq_context"] == 1).all()
    assert (daily["has_regime_context"] == 1).all()


def test_rebuilding_leaves_feature_partitions_byte_identical(home, ingested):
    defs, instance = ingested
    build(defs, instance, "SPY", TARGET)
    first = lake_digest(home, "features"), lake_digest(home, "market_regimes")
    build(defs, instance, "SPY", TARGET)
    assert (lake_digest(home, "features"), lake_digest(home, "market_regimes")) == first


def test_checks_pass_and_metadata_shows_preview_and_columns(home, ingested):
    defs, instance = ingested
    result = build(defs, instance, "SPY", TARGET)
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"no_inf": True, "nan_only_in_warmup": True, "regime_codes_in_range": True}
    metadata = result.asset_materializations_for_node("features")[0].metadata
    columns = {c.name: c.type for c in metadata["dagster/column_schema"].value.columns}
    assert columns["rsi_14"] == "float64" and columns["fold_30_5"] == "object"
    assert "| ts" in metadata["preview"].value
    assert metadata["run_partitions"].value == len(TARGET)  # a ranged run: the run's totals
    assert metadata["run_rows"].value == 390 * len(TARGET) - sum(
        Warehouse(home)
        .catalog.ingest_status("SPY")
        .set_index("date")["missing_minutes"][[pd.Timestamp(d) for d in TARGET]]
    )
    assert "rows" not in metadata


def test_catalog_has_features_view_metadata_and_fold_options(home, ingested):
    defs, instance = ingested
    build(defs, instance, "SPY", TARGET)
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        count, symbols = con.execute(
            "SELECT count(*), count(DISTINCT symbol) FROM features"
        ).fetchone()
        assert symbols == 1 and count == len(stored_features(home, "SPY", TARGET))
        names = {r[0] for r in con.execute("SELECT feature FROM feature_metadata").fetchall()}
        assert {"rsi_14", "obv", "dist_vwap", "regime_gmm", "vix_z_score"} <= names
        revision, ref, code_hash = con.execute(
            "SELECT git_revision, code_ref, code_hash FROM feature_metadata "
            "WHERE feature = 'rsi_14'"
        ).fetchone()
        assert revision and ref == "stock_assets.core.indicators:rsi" and len(code_hash) == 64
        assert con.execute("SELECT count(*) FROM feature_metadata").fetchone() == (61,)
        folds = con.execute("SELECT symbol, fold_config FROM feature_folds").fetchall()
        assert folds == [("SPY", '{"train_days":30,"test_days":5}')]


def test_missing_vixy_and_qqq_give_defaulted_flagged_columns(home):
    from stock_assets.definitions import defs

    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("symbols", ["AAPL"])
        tags = range_tags("AAPL", HISTORY[0], HISTORY[-1])
        assert (
            defs.resolve_job_def("ingest_job")
            .execute_in_process(instance=instance, tags=tags)
            .success
        )
        build(defs, instance, "AAPL", TARGET)
    frame = stored_features(home, "AAPL", TARGET)
    assert len(frame) > 0
    assert (frame[["has_vix_context", "has_qqq_context", "has_regime_context"]] == 0).all().all()
    assert (frame["vix_rel_vol"] == 1.0).all() and (frame["qqq_return"] == 0.0).all()
    assert set(frame["regime_sma"]) == {1}
    assert np.isfinite(frame["rsi_14"]).all()


def test_feature_cli_view_options_and_build(home, capsys):
    from stock_assets.cli import main

    days = [HISTORY[0].isoformat(), HISTORY[-1].isoformat()]
    assert main(["ingest", "SPY", "QQQ", "VIXY", "--start", days[0], "--end", days[1]]) == 0
    capsys.readouterr()
    assert main(["features", "build", "SPY", "--start", TARGET[0].isoformat(),
                 "--end", TARGET[-1].isoformat()]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "SPY" in out and "no_inf=True" in out
    fold = '{"train_days": 2, "test_days": 1}'
    assert main(["features", "SPY", "--columns", "rsi_14,regime_gmm", "--tail", "3",
                 "--fold", fold, "--format", "json"]) == 0  # fmt: skip
    import json

    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 3
    assert set(rows[0]) == {"symbol", "ts", "rsi_14", "regime_gmm", "fold_split"}
    assert main(["features", "options", "--format", "csv"]) == 0
    assert '"{""train_days"":30,""test_days"":5}"' in capsys.readouterr().out
    assert main(["features", "SPY", "--columns", "nope"]) == 2
    assert main(["features", "QQQQ"]) == 1
