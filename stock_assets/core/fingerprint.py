"""The model fingerprint: what makes two trainings the same training.

SHA-256 of a canonical JSON of: the sorted feature list, the normalized estimator
parameters (the algorithm's defaults updated by the spec's, so naming a default changes
nothing), target, transform, horizon, symbol, context symbols, timeframe, fold,
evaluation mode, seed, and the checksums of the data partitions used. A version number
is part of it, so a change of this recipe never matches an old fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

FINGERPRINT_VERSION = 2  # 2: parameters are the algorithm's defaults updated by the spec's


def normalize(value: Any) -> Any:
    """A JSON-stable form: floats that are whole numbers become ints, mappings sorted,
    tuples lists, NaN the string 'nan'."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            return str(value)
        return int(value) if float(value).is_integer() else float(value)
    if isinstance(value, Mapping):
        return {str(k): normalize(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, Sequence):
        return [normalize(v) for v in value]
    return str(value)


def model_fingerprint(
    *,
    symbol: str,
    algorithm: str,
    features: Sequence[str],
    params: Mapping[str, Any],
    target: str,
    transform: str,
    horizon: int,
    context: Sequence[str],
    timeframe: str,
    fold: str,
    evaluation: str,
    seed: int,
    data_checksums: Mapping[str, str],
) -> str:
    """`v<version>-<sha256 hex>` of everything that decides a training's outcome."""
    document = {
        "version": FINGERPRINT_VERSION, "symbol": symbol, "algorithm": algorithm,
        "features": sorted(features), "params": normalize(params), "target": target,
        "transform": transform, "horizon": int(horizon), "context": sorted(context),
        "timeframe": timeframe, "fold": fold, "evaluation": evaluation, "seed": int(seed),
        "data": normalize(dict(data_checksums)),
    }  # fmt: skip
    digest = hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()
    return f"v{FINGERPRINT_VERSION}-{digest}"
