"""Work endpoints launch Dagster runs (in process) on a copy of the data home: 202 with
the run, which the instance then holds as SUCCESS; the results endpoints read them."""

from __future__ import annotations

import pytest

from stock_assets.cli.common import dagster_instance


def succeeded(answer) -> dict:
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["status"] == "SUCCESS" and body["error"] is None
    assert body["dagster_url"] == f"http://127.0.0.1:3000/runs/{body['run_id']}"
    for run in body["runs"]:
        assert dagster_instance().get_run_by_id(run["run_id"]).status.value == "SUCCESS"
    return body


def test_run_links_point_at_the_dagster_webserver(monkeypatch):
    from stock_assets.api.common import dagster_url

    assert dagster_url("abc") == "http://127.0.0.1:3000/runs/abc"
    monkeypatch.setenv("STOCK_ASSETS_DAGSTER_URL", "dagster.local:3333/")
    assert dagster_url("abc") == "http://dagster.local:3333/runs/abc"


def test_an_unreachable_dagster_webserver_is_a_503(writable, client_of, monkeypatch):
    monkeypatch.setenv("STOCK_ASSETS_DAGSTER_URL", "http://127.0.0.1:9")
    answer = client_of().post("/backfill/SPY")
    assert answer.status_code == 503
    assert answer.json()["error"].startswith("the Dagster webserver at http://127.0.0.1:9 ")


def test_ingest_then_read_the_new_symbol(writable, client_of):
    client = client_of()
    body = succeeded(client.post("/ingest/aapl", params={"start": "2024-02-28",
                                                          "end": "2024-02-29"}))  # fmt: skip
    status = client.get("/ingest-status/AAPL").json()
    assert body["outputs"] == {"days": 2, "rows": sum(d["rows"] for d in status["days"]),
                               "status": {"ok": 1, "partial": 1}}  # fmt: skip
    run = client.get(f"/runs/{body['run_id']}").json()
    assert (run["job"], run["status"]) == ("ingest_job", "SUCCESS")
    assert run["tags"]["dagster/asset_partition_range_end"] == "2024-02-29|AAPL"
    assert client.get("/bars/AAPL", params={"limit": 1}).json()["bars"][0]["ts"] == (
        "2024-02-29T20:59:00+00:00"
    )
    assert "AAPL" in [s["symbol"] for s in client.get("/symbols").json()["symbols"]]


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("/ingest/SPY?start=2024-03-09&end=2024-03-10", "no XNYS session between"),
        ("/ingest/SPY?start=2010-01-04&end=2010-01-05", "before the first partition day"),
        ("/ingest/SPY?start=2024-03-04&provider=carrier-pigeon", "provider order"),
        ("/ingest/SPY", "query start: Field required"),
        ("/backfill/SPY?max_iterations=0", "query max_iterations: Input should be greater"),
        ("/backfill/SPY?start=2024-13-01", "dates are YYYY-MM-DD"),
    ],
)
def test_bad_launches_are_422_before_any_run(writable, client_of, url, fragment):
    runs = dagster_instance().get_runs_count()
    answer = client_of().post(url)
    assert answer.status_code == 422 and fragment in answer.json()["error"], answer.text
    assert dagster_instance().get_runs_count() == runs


def test_backfill_fills_every_gap(writable, client_of):
    client = client_of()
    before = client.get("/gaps/SPY").json()
    assert before["missing_minutes"] > 0 and before["filled_minutes"] == 0
    body = succeeded(client.post("/backfill/SPY", params={"max_iterations": 10}))
    assert body["outputs"] == {"partitions_filled": sum(1 for d in before["days"]
                                                        if d["missing_minutes"])}  # fmt: skip
    after = client.get("/gaps/SPY").json()
    assert (after["missing_minutes"], after["filled_minutes"]) == (0, before["missing_minutes"])
    assert client.post("/backfill/NOPE").status_code == 404


def test_rebuild_features_runs_regimes_then_features(writable, client_of):
    client = client_of()
    body = succeeded(client.post("/features/QQQ/rebuild", params={"start": "2024-02-28"}))
    assert [run["job"] for run in body["runs"]] == ["regimes_job", "features_job"]
    assert body["run_id"] == body["runs"][-1]["run_id"]
    assert body["outputs"] == {"days": 2, "checks": {"nan_only_in_warmup": True, "no_inf": True,
                                                     "regime_codes_in_range": True}}  # fmt: skip
    assert client.post("/features/NOPE/rebuild").status_code == 404


def test_simulate_then_the_leaderboard(writable, client_of):
    client = client_of()
    grid = {"models": ["baseline:momentum_5"], "thresholds": [0, 0.001], "zscore": [False],
            "volnorm": [False], "regimes": [""], "fill_delays": [0]}  # fmt: skip
    bad = client.post("/simulate/SPY", json={**grid, "fill_delays": [5000]})
    assert (bad.status_code, bad.json()) == (
        422, {"error": "fill_delays: 5000 is not a number of bars 0..1000"}
    )  # fmt: skip
    assert client.post("/simulate/SPY", json={"thresholds": "x"}).status_code == 422
    params = {"symbol": "spy", "by": "sharpe"}
    before = client.get("/leaderboard", params=params).json()["rows"]  # kept until a write
    body = succeeded(client.post("/simulate/SPY", json=grid))
    assert body["outputs"] == {"combinations": 2}

    from stock_assets.storage.warehouse import Warehouse

    board = client.get("/leaderboard", params=params).json()
    assert board["rows"] != before
    stored = Warehouse(writable).catalog.leaderboard("sharpe", "SPY", 20)
    assert [row["run_id"] for row in board["rows"]] == list(stored["run_id"])
    assert "baseline:momentum_5" in {row["model_id"] for row in board["rows"]}
    second = client.get("/leaderboard", params={"by": "sharpe", "limit": 1, "offset": 1}).json()
    assert second["rows"] == board["rows"][1:2]
    assert client.get("/stats").json()["sim_runs"] == len(stored)
    assert client.post("/simulate/VIXY").status_code == 404  # no features


def test_train_then_the_models(writable, client_of):
    client = client_of()
    refused = client.post("/train/SPY", json={"algorithm": "deep_magic"})
    assert refused.status_code == 422 and "algorithm 'deep_magic'" in refused.json()["error"]
    no_context = client.post("/train/SPY", json={"algorithm": "ridge_regression",
                                                 "context": ["VIXY"]})  # fmt: skip
    assert "context symbol VIXY has no features" in no_context.json()["error"]
    hostile = client.post("/train/SPY", json={"algorithm": "ridge_regression",
                                              "context": ["../x"]})  # fmt: skip
    assert hostile.status_code == 422

    body = succeeded(client.post("/train/SPY", json={"algorithm": "ridge_regression",
                                                     "fold": "fold_3_2"}))  # fmt: skip
    (model_id,) = body["outputs"]["model_ids"]
    assert model_id.startswith("SPY-ridge_regression-")
    listed = client.get("/models", params={"symbol": "SPY"}).json()
    assert listed["total"] == 1 and listed["models"][0]["model_id"] == model_id
    shown = client.get(f"/models/{model_id}").json()
    assert (shown["algorithm"], shown["evaluation"], shown["parent"]) == (
        "ridge_regression",
        "walk_forward",
        None,
    )
    assert "oos_hit_rate" in shown["metrics"] and shown["top_features"]
    assert shown["url"].startswith("http://127.0.0.1:5000/#/experiments/")
    assert client.get("/models", params={"symbol": "QQQ"}).json()["total"] == 0
