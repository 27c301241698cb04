"""The market-data resource: which providers answer, in which order, configured as typed
fields (the definitions fill them from the environment with `dg.EnvVar`).

Alpaca keys are no field of it: the Alpaca provider reads them from the environment
(ALPACA_API_KEY_ID / ALPACA_API_SECRET_KEY or their aliases) when it is built, so a key
can never be typed into run config, stored with a run or shown in the UI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

if TYPE_CHECKING:
    from stock_assets.providers.base import Provider


class MarketDataResource(dg.ConfigurableResource):
    """Where bars come from: STOCK_ASSETS_PROVIDERS (default `auto`: alpaca,yahoo with
    Alpaca keys, synthetic without), ALPACA_FEED, ALPACA_DATA_URL, STOCK_ASSETS_CSV_PATH
    and STOCK_ASSETS_CSV_LABEL."""

    providers: str = Field(default="auto", description="Provider order, e.g. alpaca,yahoo.")
    alpaca_feed: str = Field(
        default="iex", description="Alpaca data feed: iex, sip or delayed_sip."
    )
    alpaca_data_url: str = Field(default="", description="Alpaca data host (empty: Alpaca's).")
    alpaca_request_deadline_s: int = Field(
        default=120, description="Wall-clock limit of one Alpaca request (then retried)."
    )
    alpaca_fetch_deadline_s: int = Field(
        default=1800, description="Wall-clock limit of one symbol's whole Alpaca fetch."
    )
    alpaca_requests_per_minute: int = Field(
        default=200,
        description="Requests per minute to Alpaca shared by every fetch of this process "
        "(Alpaca's free plan allows 200).",
    )
    synthetic_seed: int = Field(default=0, description="Seed of the synthetic provider.")
    csv_path: str = Field(default="", description="File or folder of the csv provider.")
    csv_label: str = Field(
        default="start", description="csv rows are labelled by the bar's start or end minute."
    )
    csv_timezone: str = Field(
        default="America/New_York", description="Time zone of naive csv timestamps."
    )

    def chain(
        self,
        order: str | None = None,
        *,
        csv_path: str | None = None,
        csv_label: str | None = None,
        csv_timezone: str | None = None,
    ) -> list[Provider]:
        """The providers in order; a run's own order and csv settings override the
        configured ones."""
        from stock_assets.core.ingest import parse_provider_order
        from stock_assets.providers.alpaca import alpaca_keys_from_env

        names = parse_provider_order(
            order or self.providers, has_alpaca_keys=alpaca_keys_from_env() is not None
        )
        csv = (csv_path or self.csv_path, csv_label or self.csv_label,
               csv_timezone or self.csv_timezone)  # fmt: skip
        return [self._provider(name, *csv) for name in names]

    def _provider(self, name: str, csv_path: str, csv_label: str, csv_timezone: str) -> Provider:
        if name == "alpaca":
            from stock_assets.core.errors import UsageError
            from stock_assets.providers.alpaca import (
                KEY_ENV,
                SECRET_ENV,
                AlpacaProvider,
                alpaca_keys_from_env,
            )

            keys = alpaca_keys_from_env()
            if keys is None:
                raise UsageError(
                    f"no Alpaca keys in the environment: set {KEY_ENV[0]} and {SECRET_ENV[0]}"
                )
            from stock_assets.core.ratelimit import shared_budget
            from stock_assets.providers.alpaca import RetryPolicy

            policy = RetryPolicy(
                request_deadline_s=self.alpaca_request_deadline_s,
                fetch_deadline_s=self.alpaca_fetch_deadline_s,
            )
            return AlpacaProvider(
                *keys, feed=self.alpaca_feed, data_url=self.alpaca_data_url or None,
                policy=policy, budget=shared_budget("alpaca", self.alpaca_requests_per_minute),
            )  # fmt: skip
        if name == "yahoo":
            from stock_assets.providers.yahoo import YahooProvider

            return YahooProvider()
        if name == "csv":
            from stock_assets.core.errors import UsageError
            from stock_assets.providers.csv import CsvProvider

            if not csv_path:
                raise UsageError("provider csv needs a path (--csv PATH or STOCK_ASSETS_CSV_PATH)")
            return CsvProvider(csv_path, label=csv_label, timezone=csv_timezone)
        from stock_assets.providers.synthetic import SyntheticProvider

        return SyntheticProvider(seed=self.synthetic_seed)
