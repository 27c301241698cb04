"""The REST facade (FastAPI) over Dagster and the warehouse: it launches Dagster runs
through the project's one launcher and reads the lake and the catalog, nothing more.

`create_app()` (in `stock_assets.api.app`) builds the application; `stock-assets api`
serves it with uvicorn. One router module per area lives in `stock_assets.api.routes`.
"""
