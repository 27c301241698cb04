"""`stock-assets api`: serve the REST API (stock_assets.api) with uvicorn.

FastAPI and uvicorn are imported only when the command runs, so the CLI starts fast.
Without STOCK_ASSETS_API_TOKEN the server binds loopback addresses only.
"""

from __future__ import annotations

import argparse
import ipaddress
import os

from stock_assets import settings
from stock_assets.cli.common import EXIT_OK, UsageError, echo

TOKEN_ENV = "STOCK_ASSETS_API_TOKEN"
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8000


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def cmd_api(args: argparse.Namespace) -> int:
    """Serve the API on host:port until interrupted."""
    if not 1 <= args.port <= 65535:
        raise UsageError(f"--port {args.port}: a port number 1..65535")
    if not is_loopback(args.host) and not os.environ.get(TOKEN_ENV):
        raise UsageError(
            f"refusing to serve the API on {args.host} without a token: set {TOKEN_ENV} "
            "(mutating requests then need Authorization: Bearer <token>), or bind 127.0.0.1"
        )
    settings.use_dagster_home()
    os.environ.setdefault("STOCK_ASSETS_LOG_LEVEL", "WARNING")
    import uvicorn

    from stock_assets.api.app import create_app

    token = "on" if os.environ.get(TOKEN_ENV) else "off (loopback only)"
    echo(f"stock-assets API on http://{args.host}:{args.port} (token {token}; "
         f"OpenAPI at /openapi.json, docs at /docs)")  # fmt: skip
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="warning")
    return EXIT_OK


def add_api_parser(add) -> argparse.ArgumentParser:
    """The `api` subcommand, for the CLI's `add(name, handler, text)`."""
    api = add("api", cmd_api, "Serve the REST API (default 127.0.0.1:8000).")
    api.add_argument("--host", default=DEFAULT_HOST,
                     help=f"address to bind (not loopback: needs {TOKEN_ENV})")  # fmt: skip
    api.add_argument("--port", type=int, default=DEFAULT_PORT)
    return api
