"""The Dagster UI and the MLflow UI of a demo-like instance, in a headless chromium: every
asset on the asset graph, the leaderboard's table and equity curve on its page, a backfill
that completes, and the demo's model in MLflow.

The backfill is launched through the webserver's GraphQL `launchPartitionBackfill`
mutation (the UI's own call; its partition dialog is too brittle to drive), and its
completion is checked on the backfill's page in the browser.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from stock_assets.cli import main

START, END = "2024-02-01", "2024-02-29"
BACKFILL_DAYS = ["2024-03-04", "2024-03-05"]
ASSETS = ["bars_1m", "derived_bars", "market_regimes", "features", "models", "simulations",
          "leaderboard", "model_tree", "hall_of_fame", "feature_preview"]  # fmt: skip
SMALL_GRID = {"thresholds": [0.0, 0.001], "zscore": [False], "volnorm": [False],
              "regimes": ["", "regime_gmm=0"], "fill_delays": [0, 4]}  # fmt: skip
LAUNCH_BACKFILL = """mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def answers(url: str) -> bool:
    try:
        return urllib.request.urlopen(url, timeout=5).status == 200
    except OSError:
        return False


@pytest.fixture
def demo(home, monkeypatch):
    """The demo's steps on a small scale: SPY, QQQ, VIXY bars for February 2024, SPY
    features, one ridge model (a 5/2 fold: the default 30/5 needs months), the SPY
    simulations on a small grid, the research views; then the MLflow UI starting."""
    from stock_assets.cli.common import dagster_instance, launch
    from stock_assets.core import calendar
    from stock_assets.core.folds import FoldConfig
    from stock_assets.jobs import launcher as launches
    from stock_assets.pipelines.features import build_features
    from stock_assets.pipelines.specs import GridSpec
    from stock_assets.resources.mlflow import MlflowResource
    from stock_assets.storage.warehouse import Warehouse

    # an earlier test's training may have exported MLFLOW_TRACKING_URI (mlflow does, in
    # set_tracking_uri): this demo tracks under its own home, and leaves none behind
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "unset")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert main(["ingest", "SPY", "QQQ", "VIXY", "--start", START, "--end", END]) == 0
    assert main(["features", "build", "SPY", "--start", START, "--end", END]) == 0
    days = calendar.sessions(dt.date.fromisoformat(START), dt.date.fromisoformat(END))
    build_features(Warehouse(home), "SPY", days, [FoldConfig(train_days=5, test_days=2)])
    assert main(["train", "SPY", "--algorithm", "ridge_regression", "--fold", "fold_5_2"]) == 0
    mlflow_port = free_port()
    mlflow_ui = subprocess.Popen(
        [sys.executable, "-m", "stock_assets.cli", "mlflow", "--port", str(mlflow_port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        assert launch(launches.simulations("SPY", GridSpec(**SMALL_GRID))).success
        materialize_research_views(dagster_instance())
        (model,) = MlflowResource().open().models("SPY")
        yield {"mlflow_port": mlflow_port, "model": model, "warehouse": Warehouse(home)}
    finally:
        os.killpg(mlflow_ui.pid, signal.SIGTERM)
        mlflow_ui.wait(timeout=60)


def materialize_research_views(instance) -> None:
    import dagster as dg

    from stock_assets.definitions import defs

    for name, partition in [("leaderboard", "SPY"), ("model_tree", "SPY"),
                            ("feature_preview", "SPY"), ("hall_of_fame", None)]:  # fmt: skip
        assert dg.materialize(
            [defs.get_assets_def(name)], partition_key=partition, instance=instance,
            resources=defs.resources,
        ).success  # fmt: skip


def graphql(port: int, query: str, variables: dict) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", headers={"Content-Type": "application/json"},
        data=json.dumps({"query": query, "variables": variables}).encode(),
    )  # fmt: skip
    return json.loads(urllib.request.urlopen(request, timeout=60).read())["data"]


def open_page(browser, url: str) -> None:
    """Open a Dagster UI page, past the community dialog it shows a new browser once."""
    from selenium.webdriver.common.by import By

    browser.driver.get(url)
    browser.wait_for(lambda: "Lineage" in browser.body_text(), f"the Dagster UI at {url}")
    deadline = time.monotonic() + (0 if getattr(browser, "dialog_skipped", False) else 15)
    while time.monotonic() < deadline:
        for skip in browser.driver.find_elements(By.XPATH, "//button[normalize-space()='Skip']"):
            skip.click()
            browser.dialog_skipped = True
            return
        time.sleep(0.5)


def click(browser, find, what: str) -> None:
    """Click what `find()` returns, retrying while the page still moves or covers it."""

    def clicked() -> bool:
        find().click()
        return True

    browser.wait_for(clicked, f"a click on {what}")


def test_dagster_and_mlflow_uis_show_the_demo(demo, dagster_dev, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    port, _ = dagster_dev
    base = f"http://127.0.0.1:{port}"
    driver = browser.driver

    # the asset graph, every group expanded, shows every asset
    open_page(browser, f"{base}/asset-groups")
    click(
        browser,
        lambda: [b for b in driver.find_elements(By.CSS_SELECTOR, "button")
                 if b.location["x"] > 1500 and 900 < b.location["y"] < 970][0],
        "the graph's settings button (bottom right)",
    )  # fmt: skip
    click(
        browser,
        lambda: driver.find_element(By.XPATH, "//*[text()='Expand all groups']"),
        "the 'Expand all groups' menu item",
    )
    shown = browser.wait_for(
        lambda: all(driver.find_elements(By.XPATH, f"//*[text()='{a}']") for a in ASSETS),
        f"every asset on the graph ({', '.join(ASSETS)})",
    )
    assert shown, browser.shot("graph")
    browser.shot("graph")

    # the leaderboard's page: its table (the catalog's best row first) and the equity curve
    board = demo["warehouse"].catalog.leaderboard("sqn", "SPY", 20)
    open_page(browser, f"{base}/assets/leaderboard")
    browser.wait_for(
        lambda: (
            board["run_id"].iloc[0] in browser.body_text()
            and board["run_id"].iloc[-1] in browser.body_text()
        ),
        "the leaderboard table's first and last rows",
    )
    cells = driver.find_elements(By.XPATH, "//td[normalize-space()='SPY']")
    assert len(cells) >= len(board), f"{len(cells)} SPY cells; screenshot {browser.shot('table')}"
    browser.shot("leaderboard")
    click(
        browser,
        lambda: driver.find_element(
            By.XPATH, "//tr[.//span[text()='best_equity']]//a[contains(., 'Show Markdown')]"
        ),
        "best_equity's [Show Markdown]",
    )
    width = browser.wait_for(
        lambda: driver.execute_script(
            "const img = document.querySelector(\"img[src^='data:image/png;base64']\");"
            "return img && img.complete ? img.naturalWidth : 0;"
        ),
        "the equity curve image, loaded",
    )
    assert width == 1000, f"equity PNG {width}px wide; screenshot {browser.shot('equity')}"
    browser.shot("equity")
    driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)

    # a backfill of SPY's bars over two days completes
    partitions = [f"{day}|SPY" for day in BACKFILL_DAYS]
    params = {"partitionNames": partitions, "fromFailure": False, "tags": [],
              "assetSelection": [{"path": ["bars_1m"]}, {"path": ["derived_bars"]}]}  # fmt: skip
    launched = graphql(port, LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    open_page(browser, f"{base}/runs/b/{launched['backfillId']}")

    def succeeded() -> bool:
        if re.search(r"Status\s+Succeeded", browser.body_text()):  # the badge, not a header
            return True
        driver.refresh()
        time.sleep(5)
        return False

    browser.wait_for(succeeded, f"backfill {launched['backfillId']} succeeded", timeout=180)
    text = browser.body_text()
    assert all(p in text for p in partitions), f"partitions not shown; {browser.shot('backfill')}"
    browser.shot("backfill")
    stored = {d.isoformat() for d in demo["warehouse"].bar_days("SPY")}
    assert set(BACKFILL_DAYS) <= stored

    # the MLflow UI lists the demo's model in its symbol's experiment
    mlflow = f"http://127.0.0.1:{demo['mlflow_port']}"
    browser.wait_for(lambda: answers(f"{mlflow}/health"), "the MLflow UI", timeout=150)
    model = demo["model"]
    experiment = demo_experiment(model)
    driver.get(f"{mlflow}/#/experiments/{experiment}/runs")
    browser.wait_for(lambda: model.model_id in browser.body_text(), f"model {model.model_id}")
    browser.shot("mlflow")


def demo_experiment(model) -> str:
    from stock_assets.resources.mlflow import MlflowResource

    url = MlflowResource().open().run_url(model.symbol, model.run_id)
    return url.split("/experiments/")[1].split("/")[0]
