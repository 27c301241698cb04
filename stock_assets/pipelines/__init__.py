"""The application layer: composes `core` with storage and providers (ingest a symbol's
days, build features, run a grid, fill gaps). No Dagster here: assets, jobs, sensors, the
CLI and the API call these functions."""
