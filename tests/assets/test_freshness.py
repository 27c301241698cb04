"""Freshness policies: each weekday's session is due after the XNYS close, New York time."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest

from stock_assets.definitions import defs

EXPECTED = {
    "bars_1m": ("45 16 * * 1-5", dt.timedelta(minutes=45)),
    "market_regimes": ("30 17 * * 1-5", dt.timedelta(minutes=90)),
    "features": ("30 17 * * 1-5", dt.timedelta(minutes=90)),
}


@pytest.mark.parametrize("asset", sorted(EXPECTED))
def test_session_assets_are_due_after_the_close_in_new_york(asset):
    spec = defs.get_repository_def().asset_graph.get(dg.AssetKey(asset))
    policy = spec.freshness_policy
    assert (policy.deadline_cron, policy.lower_bound_delta, policy.timezone) == (
        *EXPECTED[asset],
        "America/New_York",
    )
