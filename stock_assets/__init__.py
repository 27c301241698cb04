"""stock-assets: a local-first warehouse of US stock bars and an ML strategy factory."""
