"""stock-assets: a local-first warehouse of US stock bars and an ML strategy factory."""

import warnings

import dagster as dg

warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)
