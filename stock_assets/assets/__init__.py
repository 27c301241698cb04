"""Dagster assets. BackfillPolicy and a few other APIs we use are marked beta/preview."""

import warnings

import dagster as dg

warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)
