"""One way to launch runs. Builders turn what a person asks for (a symbol's days, a grid)
into a `Launch` (job, run config, tags, partition); sensors and schedules turn it into a
RunRequest, and the CLI and the API hand it to a launcher:

- `InProcessLauncher` executes the run in this process on the local instance (the
  embedded default);
- `RemoteLauncher` submits it to a running Dagster webserver over its GraphQL API, so
  the daemon's run launcher executes it in another process, and waits for the outcome.

`launcher()` picks the remote one when STOCK_ASSETS_DAGSTER_URL is set.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import dagster as dg

from stock_assets.jobs.asset_jobs import (
    features_job,
    ingest_job,
    models_job,
    regimes_job,
    simulations_job,
)
from stock_assets.jobs.evolution import evolution_job
from stock_assets.jobs.gap_fill import gap_fill_job
from stock_assets.jobs.grid_search import grid_search_job

if TYPE_CHECKING:
    from stock_assets.pipelines.specs import GridSpec

DAGSTER_URL_ENV = "STOCK_ASSETS_DAGSTER_URL"
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
_TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}


@dataclass(frozen=True)
class Launch:
    """A run to start: its job, run config, tags and (for one partition) its key."""

    job: dg.JobDefinition | dg.UnresolvedAssetJobDefinition
    run_config: dict = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    partition_key: str | None = None

    def run_request(self, run_key: str | None = None, **tags: str) -> dg.RunRequest:
        return dg.RunRequest(
            run_key=run_key,
            run_config=self.run_config,
            tags={**self.tags, **tags},
            partition_key=self.partition_key,
            job_name=self.job.name,
        )


RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def range_tags(start: str, end: str) -> dict[str, str]:
    """Tags that make one run over the partitions from start to end."""
    return {RANGE_START: start, RANGE_END: end}


def symbol_days_tags(symbol: str, start: dt.date, end: dt.date) -> dict[str, str]:
    """One run over one symbol's days from start to end (a symbol x day rectangle)."""
    return range_tags(f"{start.isoformat()}|{symbol}", f"{end.isoformat()}|{symbol}")


def day_partition(symbol: str, day: dt.date) -> str:
    return f"{day.isoformat()}|{symbol}"


def ingest(
    symbol: str,
    start: dt.date,
    end: dt.date | None = None,
    *,
    providers: str | None = None,
    refetch: bool = False,
    csv_path: str | None = None,
    csv_label: str | None = None,
    csv_timezone: str | None = None,
) -> Launch:
    """bars_1m and derived_bars for one symbol's days (one day: a partition run)."""
    config = {"providers": providers, "refetch": refetch, "csv_path": csv_path,
              "csv_label": csv_label, "csv_timezone": csv_timezone}  # fmt: skip
    run_config = {"ops": {"bars": {"config": {k: v for k, v in config.items() if v}}}}
    if end is None or end == start:
        return Launch(ingest_job, run_config, partition_key=day_partition(symbol, start))
    return Launch(ingest_job, run_config, symbol_days_tags(symbol, start, end))


def regimes(start: dt.date, end: dt.date) -> Launch:
    return Launch(regimes_job, tags=range_tags(start.isoformat(), end.isoformat()))


def features(symbol: str, start: dt.date, end: dt.date) -> Launch:
    return Launch(features_job, tags=symbol_days_tags(symbol, start, end))


def simulations(symbol: str, spec: GridSpec | None = None) -> Launch:
    config = {"ops": {"simulations": {"config": spec.model_dump()}}} if spec else {}
    return Launch(simulations_job, config, partition_key=symbol)


def models(symbol: str, configs: list[dict] | None = None, force: bool = False) -> Launch:
    """The `models` asset of one symbol: these model specs (default: the asset's set)."""
    config = {"force": force} | ({"models": configs} if configs else {})
    return Launch(models_job, {"ops": {"models": {"config": config}}}, partition_key=symbol)


def grid_search(symbols: list[str], spec: GridSpec) -> Launch:
    config = {"symbols": symbols, **spec.model_dump()}
    return Launch(grid_search_job, {"ops": {"plan_grid_search": {"config": config}}})


def evolve(spec: dict, parent_sqn: float | None = None) -> Launch:
    """The evolution job for an EvolutionSpec's fields; a parent's SQN orders it among
    queued runs (`dagster/priority` = SQN x 10, within -1000..1000)."""
    tags = {}
    if parent_sqn is not None:
        tags["dagster/priority"] = str(max(-1000, min(1000, round(10 * parent_sqn))))
    return Launch(evolution_job, {"ops": {"start_evolution": {"config": spec}}}, tags)


def gap_fill(symbol: str, start: str | None, end: str | None, max_iterations: int) -> Launch:
    config = {"symbols": [symbol], "max_iterations": max_iterations, "start": start, "end": end}
    return Launch(gap_fill_job, {"ops": {"fill_gaps_op": {"config": config}}})


# --- launchers --------------------------------------------------------------------------


@dataclass
class RunOutcome:
    """A finished run as the local instance recorded it."""

    run_id: str
    success: bool
    instance: dg.DagsterInstance

    def events(self, event_type: dg.DagsterEventType) -> list:
        return [e.dagster_event for e in self.instance.all_logs(self.run_id, of_type=event_type)]

    def materializations(self, asset: str) -> list[dg.AssetMaterialization]:
        events = self.events(dg.DagsterEventType.ASSET_MATERIALIZATION)
        found = [e.event_specific_data.materialization for e in events]
        return [m for m in found if m.asset_key == dg.AssetKey(asset)]

    def checks(self) -> dict[str, bool]:
        events = self.events(dg.DagsterEventType.ASSET_CHECK_EVALUATION)
        return {e.event_specific_data.check_name: e.event_specific_data.passed for e in events}

    def failed_on_usage(self) -> bool:
        """Whether the run failed on what was asked (a UsageError), not on a fault."""
        from stock_assets.core.errors import UsageError

        names, pending = set(), [UsageError]
        while pending:
            kind = pending.pop()
            names.add(kind.__name__)
            pending += kind.__subclasses__()
        for event in self.events(dg.DagsterEventType.STEP_FAILURE):
            error = event.step_failure_data.error
            while error is not None:
                if error.cls_name in names:
                    return True
                error = error.cause
        return False

    def failure_reason(self) -> str:
        """The error message of the run's first failed step (for a step that exhausted its
        retries, of its last attempt), or of the run itself."""
        retried = {e.step_key: e.step_retry_data.error
                   for e in self.events(dg.DagsterEventType.STEP_UP_FOR_RETRY)}  # fmt: skip
        for event in self.events(dg.DagsterEventType.STEP_FAILURE):
            error = retried.get(event.step_key) or event.step_failure_data.error
            if error is not None:
                return _user_message(error)
        for event in self.events(dg.DagsterEventType.RUN_FAILURE):
            error = getattr(event.event_specific_data, "error", None)
            return _user_message(error) if error is not None else event.message
        return f"run {self.run_id} failed (see the Dagster UI)"


def _user_message(error) -> str:
    while error.cause is not None and (
        error.cls_name.startswith("Dagster") or error.cls_name == "RetryRequestedFromPolicy"
    ):
        error = error.cause  # Dagster wraps the user's exception
    line = error.message.strip().splitlines()[-1]
    kind, _, text = line.partition(": ")
    return text if text and " " not in kind else line  # drop "package.module.Error: "


class InProcessLauncher:
    """Execute each run in this process, on `instance`, with a quiet console."""

    def __init__(self, instance: dg.DagsterInstance):
        self.instance = instance

    def launch(self, launch: Launch) -> RunOutcome:
        from stock_assets.definitions import build_defs

        job = build_defs().resolve_job_def(launch.job.name)
        result = job.execute_in_process(
            run_config={**QUIET, **launch.run_config}, instance=self.instance,
            tags=launch.tags, partition_key=launch.partition_key, raise_on_error=False,
        )  # fmt: skip
        return RunOutcome(result.run_id, result.success, self.instance)


class RemoteLauncher:
    """Submit each run to the Dagster webserver at `url` and wait until it ends."""

    def __init__(self, url: str, instance: dg.DagsterInstance, poll_seconds: float = 0.5):
        from urllib.parse import urlsplit

        parts = urlsplit(url if "://" in url else f"http://{url}")
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 3000
        self.instance, self.poll_seconds = instance, poll_seconds

    def launch(self, launch: Launch) -> RunOutcome:
        from dagster_graphql import DagsterGraphQLClient

        client = DagsterGraphQLClient(self.host, port_number=self.port)
        tags = dict(launch.tags)
        if launch.partition_key is not None:
            tags["dagster/partition"] = launch.partition_key
            if "|" in launch.partition_key:
                day, symbol = launch.partition_key.split("|")
                tags |= {"dagster/partition/date": day, "dagster/partition/symbol": symbol}
        run_id = client.submit_job_execution(
            launch.job.name, run_config=launch.run_config, tags=tags
        )
        while (status := client.get_run_status(run_id).value) not in _TERMINAL:
            time.sleep(self.poll_seconds)
        return RunOutcome(run_id, status == "SUCCESS", self.instance)


def launcher(instance: dg.DagsterInstance) -> InProcessLauncher | RemoteLauncher:
    """The remote launcher when STOCK_ASSETS_DAGSTER_URL is set, else in process."""
    url = os.environ.get(DAGSTER_URL_ENV)
    return RemoteLauncher(url, instance) if url else InProcessLauncher(instance)
