"""The shape of the project: what the Definitions hold (a snapshot, so a layout change
cannot silently drop an asset, job, schedule, sensor or check) and which layer may
import which."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import dagster as dg

PACKAGE = Path(__file__).resolve().parents[1] / "stock_assets"

SNAPSHOT = {
    "assets": ["bars_1m", "derived_bars", "feature_preview", "features", "hall_of_fame",
               "leaderboard", "market_regimes", "model_tree", "models", "simulations"],
    "jobs": ["evolution_job", "features_job", "gap_fill_job", "grid_search_job", "ingest_job",
             "lake_check_job", "models_job", "regimes_job", "simulations_job"],
    "schedules": ["nightly_schedule"],
    "sensors": ["features_follow_sensor", "gap_scanner_sensor", "live_bars_sensor",
                "research_automation_sensor", "run_failure_alert_sensor", "symbol_history_sensor"],
    "checks": ["bars_1m:lake_readable", "bars_1m:ohlc_consistent", "bars_1m:unique_ts",
               "features:nan_only_in_warmup", "features:no_inf", "features:regime_codes_in_range",
               "market_regimes:regime_codes_in_range"],
}  # fmt: skip

# Each layer may import itself and the layers listed for it, nothing above.
LAYERS = {
    "core": {"core"},
    "storage": {"core", "storage", "logs", "settings"},
    "providers": {"core", "providers", "logs", "settings"},
    "pipelines": {"core", "storage", "providers", "pipelines", "logs", "settings"},
    "resources": {"core", "storage", "providers", "resources", "settings"},
}


def test_definitions_match_the_snapshot():
    from stock_assets.definitions import defs

    dg.Definitions.validate_loadable(defs)
    repo = defs.get_repository_def()
    found = {
        "assets": sorted(k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()),
        "jobs": sorted(j.name for j in repo.get_all_jobs() if not j.name.startswith("__")),
        "schedules": sorted(s.name for s in repo.schedule_defs),
        "sensors": sorted(s.name for s in repo.sensor_defs),
        "checks": sorted(
            f"{c.asset_key.to_user_string()}:{c.name}" for c in repo.asset_graph.asset_check_keys
        ),
    }
    assert found == SNAPSHOT


def test_every_asset_and_check_says_what_it_is():
    from stock_assets.definitions import defs

    graph = defs.get_repository_def().asset_graph
    for key in graph.get_all_asset_keys():
        assert len(graph.get(key).description or "") > 40, key
    for check in graph.asset_check_keys:
        assert graph.get_check_spec(check).description, check


def imported_layers(path: Path) -> set[str]:
    """The stock_assets sub-packages or top modules a module imports (module level or not)."""
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n.split(".")[1] for n in names if n.startswith("stock_assets.") and "." in n}


def test_no_module_imports_a_layer_above_its_own():
    violations = [
        f"{path.relative_to(PACKAGE)} imports stock_assets.assets"
        for front in ("cli", "api")
        for path in (PACKAGE / front).rglob("*.py")
        if "assets" in imported_layers(path)
    ]
    for layer, allowed in LAYERS.items():
        for path in (PACKAGE / layer).rglob("*.py"):
            for imported in imported_layers(path) - allowed:
                violations.append(f"{path.relative_to(PACKAGE)} imports stock_assets.{imported}")
    assert violations == []


def test_core_pipelines_and_storage_import_no_dagster():
    for layer in ("core", "pipelines", "storage", "providers"):
        for path in (PACKAGE / layer).rglob("*.py"):
            tree = ast.parse(path.read_text())
            modules = {
                alias.name
                for node in ast.walk(tree)
                if isinstance(node, ast.Import)
                for alias in node.names
            } | {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
            assert not any(m and m.split(".")[0] == "dagster" for m in modules), path


def test_the_definitions_load_without_the_heavy_libraries(home):
    """Every run and step process loads the definitions: they must not pull in pandas,
    numpy, numba, scikit-learn, matplotlib or the exchange calendar (whose holidays are
    cached under the home by the first process that loads them)."""
    heavy = ["pandas", "numpy", "numba", "sklearn", "matplotlib", "exchange_calendars"]
    code = (
        "import sys, stock_assets.definitions; "
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))"
    )
    first, second = (
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
        )  # fmt: skip
        for _ in range(2)
    )
    assert "exchange_calendars" in first.stdout  # the first one builds the cache
    assert second.stdout.strip() == ""
    assert list((home / "cache").glob("xnys-holidays-*.json"))
