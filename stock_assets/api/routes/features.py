"""The feature viewer: a symbol's newest feature rows, the fold configurations present,
the symbols that have features and the registered columns."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from stock_assets.api import common
from stock_assets.api.common import Symbol
from stock_assets.api.errors import NotFound, responses
from stock_assets.api.schemas import FeatureColumn, Features, FeatureSymbol, FoldOption
from stock_assets.core.symbols import normalize_symbol

router = APIRouter(prefix="/features", tags=["features"], responses=responses(422))
Fold = Annotated[
    str | None,
    Query(description='A fold configuration as JSON, e.g. {"train_days": 30, "test_days": 5}.'),
]


def _fold(text: str | None):
    from stock_assets.core.folds import FoldConfig

    return FoldConfig.parse(text) if text is not None else None


@router.get("/options")
def fold_options(fold: Fold = None) -> list[FoldOption]:
    """The fold configurations present in the catalog, each with the symbols labelled."""
    from stock_assets.core.folds import FoldConfig
    from stock_assets.pipelines.features import fold_column

    wanted = _fold(fold)
    rows = common.warehouse().catalog.feature_folds()
    options = []
    for key, group in rows.groupby("fold_config", sort=True):
        config = FoldConfig.parse(key)
        if wanted is None or config == wanted:
            options.append(FoldOption(
                fold_config=config.key, column=fold_column(config), train_days=config.train_days,
                test_days=config.test_days, symbols=sorted(group["symbol"]),
            ))  # fmt: skip
    return options


@router.get("/symbols")
def feature_symbols(
    options: Annotated[str | None, Query(description="Only symbols labelled with this fold "
                                         'configuration (JSON, e.g. {"train_days": 30, '
                                         '"test_days": 5}).')] = None,
) -> list[FeatureSymbol]:  # fmt: skip
    """Symbols with features, and the first and last day labelled."""
    wanted = _fold(options)
    rows = common.warehouse().catalog.feature_folds()
    if wanted is not None:
        rows = rows[rows["fold_config"] == wanted.key]
    found = []
    for symbol, group in rows.groupby("symbol", sort=True):
        found.append(FeatureSymbol(symbol=symbol, first_date=_day(group["first_date"].min()),
                                   last_date=_day(group["last_date"].max())))  # fmt: skip
    return found


def _day(value) -> str:
    return value.date().isoformat() if hasattr(value, "date") else str(value)


@router.get("/columns", responses=responses(404))
def feature_columns(
    symbol: Annotated[str | None, Query(description="Columns this symbol's features hold.",
                                        json_schema_extra=common.SYMBOL_SCHEMA)] = None,
) -> list[FeatureColumn]:  # fmt: skip
    """The registered feature columns (newest definition of each), or the columns stored
    for one symbol with what the registry says of them."""
    store = common.warehouse()
    metadata = store.catalog.read(
        "SELECT feature, version, category, dtype, warmup_bars FROM feature_metadata "
        "QUALIFY row_number() OVER (PARTITION BY feature ORDER BY created_at DESC, version DESC)"
        " = 1 ORDER BY feature"
    )
    known = {row["feature"]: row for row in common.records(metadata)}
    if symbol is None:
        names = list(known)
    else:
        symbol = normalize_symbol(symbol)
        frame = store.latest_features(symbol, 1)
        if frame is None:
            raise NotFound(f"no features stored for {symbol}")
        names = list(frame.columns)
    return [FeatureColumn(name=name, **{k: v for k, v in known.get(name, {}).items()
                                        if k != "feature"}) for name in names]  # fmt: skip


@router.get("/{symbol:path}", responses=responses(404))
def features(
    symbol: Symbol,
    columns: Annotated[
        str | None, Query(description="Comma-separated columns (ts always).")
    ] = None,
    tail: Annotated[int, Query(ge=1, le=common.MAX_LIMIT, description="Newest N rows.")] = 20,
    fold: Fold = None,
) -> Features:
    """A symbol's newest feature rows, chosen columns, a fold's train/test label
    (`fold_split`), as `stock-assets features SYMBOL`."""
    from stock_assets.core.errors import UsageError
    from stock_assets.pipelines.features import fold_labels

    symbol = normalize_symbol(symbol)
    config = _fold(fold)
    frame = common.warehouse().latest_features(symbol, tail)
    if frame is None:
        raise NotFound(f"no features stored for {symbol} (POST /features/{symbol}/rebuild)")
    if columns is not None:
        wanted = [c.strip() for c in columns.split(",") if c.strip()]
        unknown = [c for c in wanted if c not in frame]
        if unknown:
            raise UsageError(f"unknown feature column(s) {', '.join(unknown)}")
        frame = frame[["ts", *[c for c in dict.fromkeys(wanted) if c != "ts"]]]
    if config is not None:
        frame = frame.assign(fold_split=fold_labels(frame["ts"], config))
    frame = frame.reset_index(drop=True)
    return Features(symbol=symbol, columns=list(frame.columns), rows=common.records(frame))
