"""Every job of stock-assets. Asset jobs run in process (one ingest run starts no process
per step); the grid search fans out over Dagster's multiprocess executor; the evolution
is a dynamic graph run in process by default."""

from stock_assets.jobs.asset_jobs import (
    features_job,
    ingest_job,
    lake_check_job,
    models_job,
    regimes_job,
    simulations_job,
)
from stock_assets.jobs.evolution import evolution_job
from stock_assets.jobs.gap_fill import gap_fill_job
from stock_assets.jobs.grid_search import grid_search_job

JOBS = [ingest_job, regimes_job, features_job, models_job, simulations_job, gap_fill_job,
        grid_search_job, lake_check_job, evolution_job]  # fmt: skip

__all__ = ["JOBS", *(job.name for job in JOBS)]
