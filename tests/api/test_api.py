"""The read endpoints against a shared data home: values equal what the CLI and the
warehouse hold; bad input is a 422, a missing thing a 404, errors JSON."""

from __future__ import annotations

import json

import pytest

from stock_assets.cli import main
from stock_assets.core.symbols import RULE

from .conftest import FOLD_3_2

PATHS = {
    "/health", "/logs", "/runs", "/runs/{run_id}", "/leaderboard", "/models", "/models/{model_id}",
    "/status", "/stats", "/features/options", "/features/symbols", "/features/columns",
    "/features/{symbol}", "/symbols", "/symbols/{symbol}", "/bars/{symbol}", "/gaps/{symbol}",
    "/ingest-status/{symbol}", "/ingest/{symbol}", "/backfill/{symbol}",
    "/features/{symbol}/rebuild", "/simulate/{symbol}", "/train/{symbol}", "/evolve",
    "/evolutions", "/runs/{evolution_id}/generations", "/promoted", "/promoted/{model_id}",
}  # fmt: skip


def cli_json(capsys, *args: str) -> list[dict]:
    assert main([*args, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out.splitlines()[0])


def test_health_and_the_openapi_document(data, client_of):
    client = client_of()
    assert client.get("/health").json() == {"status": "ok"}
    document = client.get("/openapi.json").json()
    assert set(document["paths"]) == PATHS
    assert document["paths"]["/bars/{symbol}"]["get"]["parameters"][0]["schema"]["pattern"]


def test_bars_equal_what_the_cli_prints(data, client_of, capsys):
    client = client_of()
    expected = [{k: v for k, v in row.items() if k != "symbol"}
                for row in cli_json(capsys, "bars", "SPY", "--limit", "5")]  # fmt: skip
    answer = client.get("/bars/spy", params={"limit": 5}).json()
    assert answer == {"symbol": "SPY", "interval": "1m", "count": 5, "bars": expected}
    assert expected[-1]["ts"] == "2024-02-29T20:59:00+00:00"

    older = client.get("/bars/SPY", params={"limit": 3, "offset": 2}).json()["bars"]
    assert older == expected[:3]

    daily = cli_json(capsys, "bars", "SPY", "--interval", "1d", "--limit", "8")
    ranged = client.get("/bars/SPY", params={"interval": "1d", "start": "2024-02-21",
                                            "end": "2024-02-23", "limit": 10}).json()  # fmt: skip
    assert [b["ts"][:10] for b in ranged["bars"]] == ["2024-02-21", "2024-02-22", "2024-02-23"]
    assert ranged["bars"] == [{k: v for k, v in row.items() if k != "symbol"}
                              for row in daily[1:4]]  # fmt: skip
    assert set(ranged["bars"][0]) >= {"minutes", "filled_minutes"}


@pytest.mark.parametrize(
    "raw", ["..%2Fx", "..%2F..%2Fetc", "SPY;DROP", "%2e%2e", "A%20B", "1ABC", "ABCDEFGHIJK",
            "spy$", "%C5%BFpy", "%C3%9F"],
)  # fmt: skip
def test_hostile_symbols_get_422_and_touch_nothing(data, client_of, raw):
    client = client_of()
    before = sorted(str(p) for p in data.rglob("*") if "dagster" not in p.parts)
    requests = [
        ("GET", f"/bars/{raw}"), ("GET", f"/gaps/{raw}"), ("GET", f"/features/{raw}"),
        ("GET", f"/ingest-status/{raw}"), ("GET", f"/features/columns?symbol={raw}"),
        ("GET", f"/leaderboard?symbol={raw}"), ("GET", f"/models?symbol={raw}"),
        ("POST", f"/symbols/{raw}"), ("DELETE", f"/symbols/{raw}"),
        ("POST", f"/ingest/{raw}?start=2024-02-20"), ("POST", f"/backfill/{raw}"),
        ("POST", f"/features/{raw}/rebuild"), ("POST", f"/simulate/{raw}"),
    ]  # fmt: skip
    for method, url in requests:
        answer = client.request(method, url)
        assert answer.status_code == 422, (method, url, answer.text)
        assert RULE in answer.json()["error"], (method, url)
    assert sorted(str(p) for p in data.rglob("*") if "dagster" not in p.parts) == before
    from stock_assets.cli.common import dagster_instance

    assert sorted(dagster_instance().get_dynamic_partitions("symbols")) == ["QQQ", "SPY", "VIXY"]


def test_unknown_symbols_and_things_are_404(data, client_of):
    client = client_of()
    expected = {
        "/bars/NOPE": "no 1m bars stored for NOPE",
        "/bars/SPY?interval=1d&start=2016-01-04&end=2016-01-05":
            "no 1d bars stored for SPY between 2016-01-04 and 2016-01-05",
        "/gaps/NOPE": "no bars stored for NOPE",
        "/features/QQQ": "no features stored for QQQ (POST /features/QQQ/rebuild)",
        "/features/columns?symbol=NOPE": "no features stored for NOPE",
        "/ingest-status/NOPE": "no ingest recorded for NOPE",
        "/runs/00000000-0000-0000-0000-000000000000":
            "no run 00000000-0000-0000-0000-000000000000 (GET /runs)",
        "/models/SPY-ridge_regression-00000000":
            "model 'SPY-ridge_regression-00000000': no such model (stock-assets models list)",
    }  # fmt: skip
    for url, message in expected.items():
        answer = client.get(url)
        assert (answer.status_code, answer.json()) == (404, {"error": message}), url
    assert client.get("/nowhere").json() == {"error": "Not Found"}


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("/bars/SPY?start=2024-02-30", "'2024-02-30': dates are YYYY-MM-DD"),
        ("/bars/SPY?start=2024-03-05&end=2024-03-01", "start 2024-03-05 is after end 2024-03-01"),
        ("/bars/SPY?end=2099-01-01", "dates must lie between"),
        ("/gaps/SPY?start=yesterday", "'yesterday': dates are YYYY-MM-DD"),
        ("/bars/SPY?limit=0", "query limit: Input should be greater than or equal to 1"),
        ("/bars/SPY?interval=7m", "query interval: Input should be"),
        ("/symbols?limit=1001", "query limit: Input should be less than or equal to 1000"),
        ("/features/SPY?columns=close,luck", "unknown feature column(s) luck"),
        ('/features/SPY?fold={"train_days":0,"test_days":5}', "train_days=0"),
        ("/features/options?fold=30", "fold config '30'"),
        ("/leaderboard?by=luck", "'luck' is not a rankable metric"),
        ("/runs?status=DONE", "query status: Input should be"),
        ("/runs/not-a-run", "run id 'not-a-run': a Dagster run id"),
        ("/models/%20x", "model id ' x'"),
    ],
)
def test_bad_values_are_422_with_a_clear_message(data, client_of, url, fragment):
    answer = client_of().get(url)
    assert answer.status_code == 422, answer.text
    assert list(answer.json()) == ["error"] and fragment in answer.json()["error"]


def test_features_views_equal_the_cli(data, client_of, capsys):
    client = client_of()
    args = ["features", "SPY", "--columns", "rsi_14,close", "--tail", "3", "--fold", FOLD_3_2]
    expected = [{k: v for k, v in row.items() if k != "symbol"} for row in cli_json(capsys, *args)]
    answer = client.get("/features/SPY", params={"columns": "rsi_14,close", "tail": 3,
                                                "fold": FOLD_3_2}).json()  # fmt: skip
    assert answer == {"symbol": "SPY", "columns": ["ts", "rsi_14", "close", "fold_split"],
                      "rows": expected}  # fmt: skip

    assert client.get("/features/options").json() == [
        {"fold_config": '{"train_days":3,"test_days":2}', "column": "fold_3_2",
         "train_days": 3, "test_days": 2, "symbols": ["SPY"]},
        {"fold_config": '{"train_days":30,"test_days":5}', "column": "fold_30_5",
         "train_days": 30, "test_days": 5, "symbols": ["SPY"]},
    ]  # fmt: skip
    spy = [{"symbol": "SPY", "first_date": "2024-02-20", "last_date": "2024-02-29"}]
    assert client.get("/features/symbols").json() == spy
    assert client.get("/features/symbols", params={"options": FOLD_3_2}).json() == spy
    other = client.get("/features/symbols", params={"options": '{"train_days":9,"test_days":9}'})
    assert other.json() == []

    from stock_assets.storage.warehouse import Warehouse

    stored = list(Warehouse(data).latest_features("SPY", 1).columns)
    columns = client.get("/features/columns", params={"symbol": "SPY"}).json()
    assert [c["name"] for c in columns] == stored
    rsi = next(c for c in columns if c["name"] == "rsi_14")
    assert rsi["version"] >= 1 and rsi["category"] and rsi["warmup_bars"] > 0
    registered = client.get("/features/columns").json()
    assert "rsi_14" in [c["name"] for c in registered] and "fold_3_2" not in stored[:1]


def test_gaps_and_ingest_status_equal_the_catalog(data, client_of, capsys):
    client = client_of()
    assert main(["gaps", "SPY", "--format", "json"]) == 0
    printed = capsys.readouterr().out.splitlines()
    expected_days = json.loads(printed[0])
    gaps = client.get("/gaps/SPY").json()
    assert gaps["days"] == expected_days
    assert printed[1] == (f"SPY: {gaps['sessions']} sessions, {gaps['missing_minutes']} missing "
                          f"minutes, {gaps['filled_minutes']} filled minutes")  # fmt: skip
    assert (gaps["start"], gaps["end"], gaps["sessions"]) == ("2024-02-20", "2024-02-29", 8)
    assert gaps["total"] == len(expected_days)
    assert (
        client.get("/gaps/SPY", params={"limit": 1, "offset": 1}).json()["days"]
        == (expected_days[1:2])
    )

    from stock_assets.storage.warehouse import Warehouse

    stored = Warehouse(data).catalog.ingest_status("SPY")
    status = client.get("/ingest-status/SPY").json()
    assert status["total"] == 8
    assert [d["date"] for d in status["days"]] == [d.date().isoformat() for d in stored["date"]]
    assert [d["status"] for d in status["days"]] == list(stored["status"])
    assert [d["rows"] for d in status["days"]] == [int(r) for r in stored["rows"]]
    window = client.get("/ingest-status/SPY", params={"start": "2024-02-27"}).json()
    assert [d["date"] for d in window["days"]] == ["2024-02-27", "2024-02-28", "2024-02-29"]


def test_symbols_add_list_remove(home, client_of):
    client = client_of()
    assert client.get("/symbols").json() == {"total": 0, "limit": 100, "offset": 0, "symbols": []}
    assert client.post("/symbols/msft").json() == {"symbol": "MSFT", "changed": True}
    assert client.post("/symbols/MSFT").json() == {"symbol": "MSFT", "changed": False}
    assert client.post("/symbols/BRK.B").status_code == 200
    listed = client.get("/symbols", params={"limit": 1, "offset": 1}).json()
    assert listed == {"total": 2, "limit": 1, "offset": 1,
                      "symbols": [{"symbol": "MSFT", "valid": True, "error": None}]}  # fmt: skip
    assert client.delete("/symbols/msft").json() == {"symbol": "MSFT", "changed": True}
    gone = client.delete("/symbols/MSFT")
    assert (gone.status_code, gone.json()) == (
        404, {"error": "MSFT is not a symbol partition (GET /symbols)"}
    )  # fmt: skip

    from stock_assets.cli.common import dagster_instance

    dagster_instance().add_dynamic_partitions("symbols", ["msft"])  # as the UI lets one
    flagged = client.get("/symbols").json()["symbols"]
    assert flagged[1] == {"symbol": "msft", "valid": False,
                          "error": "partition key 'msft' is not canonical: use 'MSFT'"}  # fmt: skip
    assert client.delete("/symbols/msft").json() == {"symbol": "msft", "changed": True}
    assert sorted(dagster_instance().get_dynamic_partitions("symbols")) == ["BRK.B"]


def test_mutating_requests_need_the_token_when_one_is_set(home, client_of, monkeypatch):
    client = client_of(token="s3cret")
    for method, url in [("POST", "/symbols/SPY"), ("DELETE", "/symbols/SPY"),
                        ("POST", "/ingest/SPY?start=2024-02-20"), ("POST", "/train/SPY"),
                        ("POST", "/simulate/SPY"), ("POST", "/backfill/..%2Fx")]:  # fmt: skip
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            answer = client.request(method, url, headers=headers)
            assert answer.status_code == 401, (method, url, headers)
            assert answer.json() == {
                "error": "a bearer token is required: Authorization: Bearer "
                "<STOCK_ASSETS_API_TOKEN>"
            }
            assert answer.headers["WWW-Authenticate"] == "Bearer"
    assert not (home / "lake").exists()
    ok = client.post("/symbols/SPY", headers={"Authorization": "Bearer s3cret"})
    assert ok.json() == {"symbol": "SPY", "changed": True}
    assert client.get("/symbols").json()["total"] == 1  # reads need no token

    monkeypatch.setenv("STOCK_ASSETS_API_TOKEN", "from-env")
    from_env = client_of()
    assert from_env.post("/symbols/QQQ").status_code == 401
    assert from_env.post("/symbols/QQQ", headers={"Authorization": "Bearer from-env"}).is_success


def test_status_and_stats_of_an_instance_without_daemon(data, client_of):
    import datetime as dt

    import pandas as pd

    from stock_assets.core import calendar

    client = client_of()
    status = client.get("/status").json()
    assert status["daemons"] and status["daemons_healthy"] is False
    assert all(d["last_heartbeat"] is None for d in status["daemons"])
    assert status["instigators"] == [] and status["live_sensor"] is None
    assert status["alerts"] == []
    spy = next(s for s in status["symbols"] if s["symbol"] == "SPY")
    assert spy["last_bar"] == "2024-02-29T20:59:00+00:00"
    clock = pd.Timestamp(status["session_clock"])
    clock_day = clock.tz_convert(calendar.EXCHANGE_TZ).date()
    assert calendar.is_session(clock_day) and clock <= pd.Timestamp(status["now"])
    assert spy["sessions_behind"] == len(calendar.sessions(dt.date(2024, 3, 1), clock_day))
    assert spy["lag_minutes"] == (clock - pd.Timestamp(spy["last_bar"])).total_seconds() / 60
    assert spy["stale"] is True and spy["lag_seconds"] > 0
    assert status["stale"] is status["session_open"]  # stale in a session, else not counted
    assert [s["symbol"] for s in status["symbols"]] == ["QQQ", "SPY", "VIXY"]

    stats = client.get("/stats").json()
    assert stats == {"symbols": 3, "bar_days": 24, "feature_days": 8, "sim_runs": 0,
                     "models": 0, "runs": {"SUCCESS": 5}}  # fmt: skip
    runs = client.get("/runs", params={"limit": 2, "offset": 1}).json()
    assert (runs["total"], len(runs["runs"])) == (5, 2)
    every = client.get("/runs", params={"status": "SUCCESS"}).json()["runs"]
    assert [r["job"] for r in every] == ["features_job", "regimes_job", "ingest_job",
                                         "ingest_job", "ingest_job"]  # fmt: skip
    assert runs["runs"] == every[1:3]
    features = client.get("/runs", params={"job": "features_job"}).json()["runs"]
    assert len(features) == 1
    one = client.get(f"/runs/{features[0]['run_id']}").json()
    assert one == features[0]
    assert one["tags"]["dagster/asset_partition_range_start"] == "2024-02-20|SPY"
    assert one["dagster_url"] == f"http://127.0.0.1:3000/runs/{one['run_id']}"
    assert one["started_at"] <= one["ended_at"]
    assert client.get("/runs", params={"status": "FAILURE"}).json()["total"] == 0
    assert client.get("/leaderboard").json()["rows"] == []
    assert client.get("/models").json() == {"total": 0, "limit": 100, "offset": 0, "models": []}
