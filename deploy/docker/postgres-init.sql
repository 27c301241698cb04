-- Run once, by the postgres image's entrypoint, when the pgdata volume is first created
-- (POSTGRES_DB creates `dagster`): the other two databases of the stack, owned by
-- POSTGRES_USER like it. `dagster`: Dagster's runs, events, schedules; `catalog`: the
-- stock-assets catalog tables (STOCK_ASSETS_CATALOG_URL); `mlflow`: the MLflow server's
-- experiments, runs and registry.
CREATE DATABASE catalog;
CREATE DATABASE mlflow;
