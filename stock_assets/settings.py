"""Where the program keeps its files: everything under STOCK_ASSETS_HOME (default ./data)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
# The embedded default instance's config: the repository's top-level dagster.yaml (a wheel
# carries it inside the package, see pyproject.toml).
INSTANCE_CONFIG = PACKAGE_DIR.parent / "dagster.yaml"
if not INSTANCE_CONFIG.is_file():
    INSTANCE_CONFIG = PACKAGE_DIR / "dagster.yaml"
DEFAULT_HOME = "data"


def home() -> Path:
    """STOCK_ASSETS_HOME as an absolute path (created if missing)."""
    path = Path(os.environ.get("STOCK_ASSETS_HOME", DEFAULT_HOME)).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def first_partition_day() -> dt.date:
    """STOCK_ASSETS_FIRST_DAY (default 2016-01-04): the first day of the date partitions."""
    return dt.date.fromisoformat(os.environ.get("STOCK_ASSETS_FIRST_DAY", "2016-01-04"))


def catalog_url() -> str:
    """STOCK_ASSETS_CATALOG_URL: a postgresql:// URL puts the catalog's tables in
    PostgreSQL (a deployment); empty (the default) keeps them in the DuckDB file."""
    return os.environ.get("STOCK_ASSETS_CATALOG_URL", "").strip()


def dagster_home() -> Path:
    """DAGSTER_HOME (default <home>/dagster), holding the instance's dagster.yaml."""
    raw = os.environ.get("DAGSTER_HOME")
    path = Path(raw).expanduser().resolve() if raw else home() / "dagster"
    path.mkdir(parents=True, exist_ok=True)
    config = path / "dagster.yaml"
    if not config.exists():
        shutil.copyfile(INSTANCE_CONFIG, config)
    return path


def use_dagster_home() -> Path:
    """Point this process (and the processes it starts) at the instance under DAGSTER_HOME."""
    path = dagster_home()
    os.environ["DAGSTER_HOME"] = str(path)
    os.environ.setdefault("STOCK_ASSETS_HOME", str(home()))
    os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", "200")  # batched event writes
    return path


@lru_cache(maxsize=1)
def git_revision() -> str:
    """The git revision of the code that runs: STOCK_ASSETS_GIT_REVISION (set in the
    container image, which has no .git), else the checkout's (`unknown` outside one)."""
    if os.environ.get("STOCK_ASSETS_GIT_REVISION"):
        return os.environ["STOCK_ASSETS_GIT_REVISION"]
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=PACKAGE_DIR, capture_output=True, text=True, timeout=5, check=True,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() or "unknown"
