"""train, train-group, models list|show|delete through the CLI (Dagster runs, MLflow)."""

from __future__ import annotations

import json

import pytest

from stock_assets.cli import main

ARGS = ["--start", "2024-02-01", "--end", "2024-02-29"]
FOLD = '{"train_days": 5, "test_days": 2}'


def stock(capsys, args):
    assert main(["ingest", "SPY", "QQQ", "VIXY", *args]) == 0
    assert main(["features", "build", "SPY", *args]) == 0
    capsys.readouterr()


@pytest.fixture
def features(home, capsys):
    stock(capsys, ARGS)


@pytest.fixture
def few_features(home, capsys):
    stock(capsys, ["--start", "2024-02-26", "--end", "2024-02-28"])


def build_fold(home):
    """Label a 5/2 fold on SPY's stored features (the default 30/5 needs months of data)."""
    import datetime as dt

    from stock_assets.core import calendar
    from stock_assets.core.folds import FoldConfig
    from stock_assets.pipelines.features import build_features
    from stock_assets.storage.warehouse import Warehouse

    days = calendar.sessions(dt.date(2024, 2, 1), dt.date(2024, 2, 29))
    build_features(Warehouse(home), "SPY", days, [FoldConfig(5, 2)])


def test_train_list_show_delete(home, features, capsys):
    build_fold(home)
    code = main(["train", "spy", "--algorithm", "ridge_regression", "--fold", "fold_5_2"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "1 model(s) for SPY (0 recognized" in out and "SPY-ridge_regression-" in out
    assert main(["train", "SPY", "--algorithm", "ridge_regression", "--fold", "fold_5_2"]) == 0
    assert "(1 recognized by fingerprint" in capsys.readouterr().out

    assert main(["models", "list", "SPY", "--format", "json"]) == 0
    (model,) = json.loads(capsys.readouterr().out)
    assert model["algorithm"] == "ridge_regression" and model["parent"] is None
    child = ["train", "SPY", "--algorithm", "lightgbm_regressor", "--fold", "fold_5_2",
             "--parent", model["model_id"], "--exclude", "rsi_14"]  # fmt: skip
    assert main(child) == 0
    capsys.readouterr()
    assert main(["models", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(model["model_id"]) and lines[1].startswith("  SPY-lightgbm")

    assert main(["models", "show", model["model_id"], "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["tags"]["evaluation"] == "walk_forward"
    assert "oos_hit_rate" in shown["metrics"] and shown["top_features"]
    assert main(["models", "delete", "--all"]) == 2  # no terminal to ask twice
    assert main(["models", "delete", "--all", "--yes", "--yes"]) == 0
    assert "deleted 2 model(s)" in capsys.readouterr().out
    assert main(["models", "list"]) == 1


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--algorithm", "deep_magic"], "algorithm 'deep_magic'"),
        (["--algorithm", "ridge_regression", "--horizon", "0"], "horizon 0"),
        (["--algorithm", "ridge_regression", "--context", "A,B,C,D"], "at most 3"),
        (["--algorithm", "ridge_regression", "--context", "VIXY"], "context symbol VIXY has no"),
        (["--algorithm", "ridge_regression", "--features", "close"], "close"),
        (["--algorithm", "ridge_regression", "--fold", "fold_99_1"], "fold"),
        (["--algorithm", "ridge_regression", "--parent", "SPY-x-1"], "no such model"),
    ],
)
def test_bad_training_requests_exit_2_and_train_nothing(home, few_features, capsys, args,
                                                        fragment):  # fmt: skip
    assert main(["train", "SPY", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0], err
    assert main(["models", "list"]) == 1


def test_mlflow_command_serves_the_ui_on_the_projects_store(home):
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    from stock_assets.storage.models import ModelRegistry, default_tracking_uri

    ModelRegistry(default_tracking_uri(home)).client.create_experiment("stock-assets/SPY")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "stock_assets.cli", "mlflow", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/get-by-name?experiment_name="
    try:
        deadline, answer = time.monotonic() + 300, None
        while time.monotonic() < deadline and answer is None:
            try:
                answer = urllib.request.urlopen(url + "stock-assets/SPY", timeout=5).read()
            except OSError:
                time.sleep(1)
        assert answer is not None and b'"name": "stock-assets/SPY"' in answer.replace(
            b'":"', b'": "'
        )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
