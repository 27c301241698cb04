"""The evolution, step by step, without Dagster: `start`, then per generation `propose`,
`train_candidate` (each), `simulation_tasks`, `simulate` (each) and `select`, which either
promotes and stops, stops for another reason, or seeds the next generation.

Every step is a plain function over the warehouse and the model registry, so the Dagster
job (`jobs/evolution.py`) only fans them out. Rows are keyed by the evolution id and the
(generation, candidate) position, models by their fingerprint and simulations by their
grid id, so a resumed or re-executed evolution rewrites what it had written, retrains
nothing it had trained, and adds no copies.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from stock_assets.core import evolution as evo
from stock_assets.core.errors import UsageError
from stock_assets.logs import get_logger, log_event
from stock_assets.pipelines.lineage import lineage
from stock_assets.pipelines.models import TrainedModels, train
from stock_assets.pipelines.specs import EvolutionSpec

if TYPE_CHECKING:
    from stock_assets.storage.models import LoggedModel, ModelRegistry
    from stock_assets.storage.warehouse import Warehouse

log = get_logger(__name__)

REGISTERED_PREFIX = "stock-assets-"
CHAMPION = "champion"
FIGURES = ("sqn", "profit_factor", "trades", "weekly_consistency", "max_drawdown",
           "excess_vs_buy_hold", "excess_vs_random")  # fmt: skip
SIM_CONFIG = ("grid_id", "combo", "threshold", "regime_column", "regime_allowed", "fill_delay",
              "fill_price", "fee_per_trade", "fee_bps", "zscore", "volnorm", "start_ts",
              "end_ts")  # fmt: skip


@dataclass
class Generation:
    """What a generation starts from: the features (None: every model feature), the
    crossover partner's, the parent model and what was pruned from it, and the trials so
    far (their parameters and objectives for the sampler, their Sharpe ratios and count
    for the Deflated Sharpe test)."""

    evolution_id: str
    spec: dict[str, Any]
    generation: int
    mlflow_run_id: str
    features: list[str] | None = None
    partner: list[str] | None = None
    parent_id: str | None = None
    parent_sqn: float | None = None
    parent_algorithm: str | None = None
    parent_params: dict[str, Any] = field(default_factory=dict)
    pruned: dict[str, str] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    trials: int = 0
    sharpes: list[float] = field(default_factory=list)

    @property
    def config(self) -> EvolutionSpec:
        return EvolutionSpec(**self.spec)


@dataclass
class Candidate:
    evolution_id: str
    generation: int
    index: int
    algorithm: str
    params: dict[str, Any]
    features: list[str] | None
    origin: str  # seed | elite | sampled | crossover
    parent_id: str | None
    parent_sqn: float | None
    mlflow_run_id: str
    spec: dict[str, Any]


@dataclass
class TrainedCandidate:
    candidate: Candidate
    model_id: str
    run_id: str
    fingerprint: str
    reused: bool
    features: list[str]
    importance: list[dict[str, Any]]


@dataclass
class SimTask:
    symbol: str
    model_id: str
    regime: str
    spec: dict[str, Any]


@dataclass
class SimOutcome:
    """One grid chunk's sim_runs rows (the baselines' too), the daily-return moments of
    each model combination, and the plots of its best combination."""

    task: SimTask
    grid_id: str
    rows: pd.DataFrame
    moments: dict[int, evo.Moments]
    plots: dict[str, bytes]


@dataclass
class Selection:
    """A generation's outcome: one row per candidate, the promoted model if any, why the
    evolution stops (None: it goes on with `next`)."""

    generation: int
    candidates: pd.DataFrame
    promoted: dict[str, Any] | None
    stop_reason: str | None
    reason: str
    next: Generation | None
    plots: dict[str, bytes]
    reused: int
    trials: int


# --- start ----------------------------------------------------------------------------------


def start(
    warehouse: Warehouse, registry: ModelRegistry, spec: EvolutionSpec, dagster_run_id: str
) -> Generation:
    """Check everything, record the evolution and return generation 0. A spec naming the
    `evolution_id` of a recorded evolution resumes it with its stored configuration."""
    from stock_assets.core.symbols import normalize_symbol, normalize_symbols

    if spec.evolution_id:
        stored = warehouse.catalog.read(
            "SELECT config FROM evolution_runs WHERE evolution_id = ?", [spec.evolution_id]
        )
        if not stored.empty:
            spec = EvolutionSpec(
                **{**json.loads(stored["config"].iloc[0]), "evolution_id": spec.evolution_id}
            )
    context = normalize_symbols(spec.context) if spec.context else []
    spec = spec.model_copy(update={"symbol": normalize_symbol(spec.symbol), "context": context})
    spec.check()
    for name in (spec.symbol, *spec.context):
        if not warehouse.feature_days(name):
            role = "symbol" if name == spec.symbol else "context symbol"
            raise UsageError(
                f"{role} {name} has no features: stock-assets features build {name} --start D"
            )
    evolution_id = spec.evolution_id or dagster_run_id
    first = Generation(evolution_id, spec.model_dump(), 0, "", list(spec.seed_features) or None)
    if spec.parent:
        parent = registry.get(spec.parent)
        if parent.symbol != spec.symbol:
            raise UsageError(f"parent {spec.parent} models {parent.symbol}, not {spec.symbol}")
        first.parent_id, first.parent_algorithm = parent.model_id, parent.tags.get("algorithm")
        first.parent_params = model_params(parent)
        first.features = first.features or json.loads(parent.tags.get("features", "[]")) or None
        # the trials that led to the parent count for its descendants' Deflated Sharpe
        first.parent_sqn, first.trials = parent_record(warehouse, parent)
    config = spec.model_dump_json()
    first.mlflow_run_id = registry.evolution_run(spec.symbol, evolution_id, {
        "symbol": spec.symbol, "dagster_run_id": dagster_run_id, "config": config[:5000],
        "seed_model_id": spec.parent,
    })  # fmt: skip
    _record_run(warehouse, evolution_id, spec, dagster_run_id, first.mlflow_run_id,
                status="RUNNING", current_generation=0)  # fmt: skip
    log_event(log, "evolve", f"evolution {evolution_id} started: {spec.max_generations} "
              f"generations x {spec.candidates} candidates", symbol=spec.symbol)  # fmt: skip
    return first


def parent_record(warehouse: Warehouse, parent: LoggedModel) -> tuple[float | None, int]:
    """A parent's best SQN (from its evolution, else its simulations' `sim_best_sqn`) and
    the trials of the evolution that made it (0 for a model trained outside one)."""
    known = warehouse.catalog.read(
        "SELECT sqn, trials FROM evolution_log WHERE child_model_id = ? "
        "ORDER BY trials DESC LIMIT 1", [parent.model_id],
    )  # fmt: skip
    if known.empty:
        return parent.metrics.get("sim_best_sqn"), 0
    sqn = known["sqn"].iloc[0]
    return (float(sqn) if pd.notna(sqn) else None), int(known["trials"].iloc[0])


def model_params(model: LoggedModel) -> dict[str, Any]:
    """The estimator parameters a logged model was trained with (its `param_*` params)."""
    out = {}
    for key, text in model.params.items():
        if key.startswith("param_"):
            try:
                out[key.removeprefix("param_")] = json.loads(text)
            except ValueError:
                out[key.removeprefix("param_")] = text
    return out


def _record_run(
    warehouse: Warehouse,
    evolution_id: str,
    spec: EvolutionSpec,
    dagster_run_id: str,
    mlflow_run_id: str,
    **values: Any,
) -> None:
    """Write the evolution's row, keeping the fields `values` does not set."""
    now = pd.Timestamp.now(tz="UTC")
    old = warehouse.catalog.read(
        "SELECT * FROM evolution_runs WHERE evolution_id = ?", [evolution_id]
    )
    row = old.iloc[0].to_dict() if not old.empty else {"created_at": now}
    row.update(
        evolution_id=evolution_id,
        dagster_run_id=dagster_run_id,
        symbol=spec.symbol,
        max_generations=spec.max_generations,
        seed_model_id=spec.parent or None,
        mlflow_run_id=mlflow_run_id,
        config=spec.model_dump_json(),
        updated_at=now,
        **values,
    )
    warehouse.catalog.upsert("evolution_runs", pd.DataFrame([row]))


# --- propose and train ------------------------------------------------------------------------


def propose(gen: Generation) -> list[Candidate]:
    """The generation's candidates. Candidate i uses algorithm i mod len(algorithms) and
    hyperparameters from the sampler, told every trial of that algorithm so far; a later
    generation's (or a parent's) first candidate keeps the parent's parameters on the
    pruned features (elitism), and with crossover its last one blends the features of the
    previous generation's two best models."""
    spec = gen.config
    slots: dict[str, list[int]] = {}
    for index in range(spec.candidates):
        slots.setdefault(spec.algorithms[index % len(spec.algorithms)], []).append(index)
    chosen: dict[int, tuple[str, dict[str, Any]]] = {}
    for number, (algorithm, indexes) in enumerate(slots.items()):
        history = [
            evo.Trial(h["params"], tuple(h["objectives"]))
            for h in gen.history
            if h["algorithm"] == algorithm
        ]
        seed = spec.seed * 1_000 + gen.generation * 10 + number
        drawn = evo.propose_params(algorithm, history, len(indexes), spec.sampler, seed)
        chosen.update(zip(indexes, ((algorithm, params) for params in drawn), strict=True))
    candidates = []
    for index in range(spec.candidates):
        algorithm, params = chosen[index]
        origin, features = ("seed" if gen.generation == 0 else "sampled"), gen.features
        if index == 0 and gen.parent_id and gen.parent_algorithm == algorithm:
            origin, params = "elite", dict(gen.parent_params)
        elif spec.crossover and gen.partner and index == spec.candidates - 1 and index > 0:
            origin = "crossover"
            features = evo.crossover(gen.features or [], gen.partner, spec.seed + gen.generation)
        candidates.append(
            Candidate(
                gen.evolution_id,
                gen.generation,
                index,
                algorithm,
                params,
                features,
                origin,
                gen.parent_id,
                gen.parent_sqn,
                gen.mlflow_run_id,
                gen.spec,
            )
        )
    return candidates


def train_candidate(
    warehouse: Warehouse, registry: ModelRegistry, candidate: Candidate, dagster_run_id: str
) -> TrainedCandidate:
    """Train the candidate, or reuse the model of its fingerprint (logged, not trained)."""
    spec = EvolutionSpec(**candidate.spec)
    model_spec = spec.model_spec(candidate.algorithm, candidate.features, candidate.params)
    tags = {
        "parent": candidate.parent_id or "",
        "evolution_id": candidate.evolution_id,
        "generation": str(candidate.generation),
        "candidate": str(candidate.index),
        "origin": candidate.origin,
        "dagster_run_id": dagster_run_id,
        "mlflow.parentRunId": candidate.mlflow_run_id,
    }
    (record,) = train(warehouse, registry, spec.symbol, model_spec, run_tags=tags)
    if record.reused:
        log_event(
            log,
            "evolve",
            f"generation {candidate.generation} candidate "
            f"{candidate.index}: reused {record.model_id} (known fingerprint, not "
            "trained)",
            symbol=spec.symbol,
        )
        importance = registry.importance(record.model)
        features = json.loads(record.model.tags.get("features", "[]"))
    else:
        importance = record.trained.importance
        features = list(record.trained.features)
    return TrainedCandidate(
        candidate,
        record.model_id,
        record.model.run_id,
        record.model.tags["fingerprint"],
        record.reused,
        features,
        _records(importance),
    )


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    frame = frame.astype(object).where(frame.notna(), None)
    return frame.to_dict(orient="records")


# --- simulate --------------------------------------------------------------------------------


def simulation_tasks(gen: Generation, trained: list[TrainedCandidate]) -> list[SimTask]:
    """The flat product of (distinct model x grid chunk), one chunk per regime whitelist."""
    spec = gen.config
    models = list(dict.fromkeys(t.model_id for t in trained))
    return [
        SimTask(spec.symbol, model_id, regime, gen.spec)
        for model_id in models
        for regime in spec.regime_configs
    ]


def simulate(warehouse: Warehouse, registry: ModelRegistry, task: SimTask) -> SimOutcome:
    """One chunk of a candidate's grid over its out-of-sample predictions only (the fold's
    test rows; every other bar has no prediction, so no signal)."""
    from stock_assets.core.metrics import daily_returns
    from stock_assets.pipelines.simulations import run_grid

    spec = EvolutionSpec(**task.spec)
    frame = _features(str(warehouse.root), task.symbol, warehouse.feature_checksum(task.symbol))
    predictor = TrainedModels(registry).predictor(task.symbol, task.model_id)
    run = run_grid(frame, task.symbol, predictor, spec.grid(task.regime))
    result = run.result
    days = result.ts.tz_convert("America/New_York").normalize()
    moments = {}
    for combo, sim in enumerate(result.runs):
        eod = result.equity(combo).groupby(days).last().to_numpy()
        moments[combo] = evo.daily_moments(daily_returns(eod, sim.params.initial_cash))
    return SimOutcome(task, run.grid_id, run.rows, moments, run.plots)


@lru_cache(maxsize=2)
def _features(root: str, symbol: str, checksum: str) -> pd.DataFrame:
    """The symbol's stored features, read once per process while they are unchanged."""
    from stock_assets.pipelines.simulations import load_features
    from stock_assets.storage.warehouse import Warehouse

    return load_features(Warehouse(root), symbol)


# --- select ----------------------------------------------------------------------------------


def select(
    warehouse: Warehouse,
    registry: ModelRegistry,
    gen: Generation,
    trained: list[TrainedCandidate],
    outcomes: list[SimOutcome],
    dagster_run_id: str,
) -> Selection:
    """Store the generation's simulations, judge every candidate, promote the best one
    that passes everything, else seed the next generation from the best by SQN (its
    features pruned) or stop; record the lineage."""
    spec, criteria = gen.config, gen.config.criteria()
    rows = pd.concat([o.rows for o in outcomes], ignore_index=True)
    warehouse.catalog.replace_sim_runs(rows)
    grids = {o.grid_id: o for o in outcomes}
    model_rows = rows[rows["grid_id"].isin(list(grids))]
    per_model = model_rows.groupby("model_id").size()
    trials = gen.trials + sum(int(per_model.get(t.model_id, 0)) for t in trained)
    sharpes = gen.sharpes + [float(s) / math.sqrt(252) for s in model_rows["sharpe"] if pd.notna(s)]
    sr_variance = float(np.var(sharpes, ddof=1)) if len(sharpes) > 1 else 0.0
    judged = []
    for t in trained:
        mine = model_rows[model_rows["model_id"] == t.model_id].to_dict(orient="records")
        best = evo.best_row(mine, criteria)
        moments = grids[best["grid_id"]].moments.get(int(best["combo"])) if best else None
        verdict = evo.judge(best, criteria, moments, trials, sr_variance)
        judged.append((t, best, verdict))
    winners = [j for j in judged if j[2].promoted]
    promoted = None
    if winners:
        t, best, verdict = max(winners, key=lambda j: float(j[1]["sqn"]))
        promoted = _promote(warehouse, registry, gen, t, best, verdict, trials)
    ranked = sorted((j for j in judged if j[1] is not None), key=lambda j: -_sqn(j[1]))
    pruning = partner = None
    if ranked:
        leader = ranked[0][0]
        pruning = evo.prune(leader.features, leader.importance)
        if len(ranked) > 1:
            runner_up = ranked[1][0]
            partner = evo.prune(runner_up.features, runner_up.importance).kept
    stop = evo.stop_reason(gen.generation, spec.max_generations, promoted is not None, pruning)
    candidates = _log_rows(gen, judged, trials, promoted)
    warehouse.catalog.upsert("evolution_log", candidates)
    leader_row = ranked[0] if ranked else None
    reason = _reason(stop, promoted, leader_row)
    best_sqn = _sqn(leader_row[1]) if leader_row else math.nan
    history = gen.history + [
        {"algorithm": t.candidate.algorithm, "params": t.candidate.params,
         "objectives": list(evo.objectives(best))}
        for t, best, _ in judged
    ]  # fmt: skip
    next_gen = None
    if stop is None:
        leader = leader_row[0]
        next_gen = Generation(
            gen.evolution_id, gen.spec, gen.generation + 1, gen.mlflow_run_id,
            features=pruning.kept, partner=partner, parent_id=leader.model_id,
            parent_sqn=best_sqn if math.isfinite(best_sqn) else None,
            parent_algorithm=leader.candidate.algorithm, parent_params=leader.candidate.params,
            pruned=pruning.pruned, history=history, trials=trials, sharpes=sharpes,
        )  # fmt: skip
    status = "RUNNING" if stop is None else ("PROMOTED" if promoted else "COMPLETED")
    _record_run(
        warehouse, gen.evolution_id, spec, dagster_run_id, gen.mlflow_run_id, status=status,
        stop_reason=stop, reason=reason, current_generation=gen.generation,
        best_model_id=leader_row[0].model_id if leader_row else None,
        best_sqn=best_sqn if math.isfinite(best_sqn) else None,
        promoted_model_id=promoted["model_id"] if promoted else None, trials=trials,
    )  # fmt: skip
    if stop is not None:
        registry.end_run(gen.mlflow_run_id, {"stop_reason": stop, "reason": reason[:5000]},
                         {"trials": trials, "best_sqn": best_sqn})  # fmt: skip
    log_event(log, "evolve", f"generation {gen.generation + 1}/{spec.max_generations}: best "
              f"SQN {best_sqn:.3g}; {reason}", symbol=spec.symbol)  # fmt: skip
    plots = grids[leader_row[1]["grid_id"]].plots if leader_row else {}
    return Selection(gen.generation, candidates, promoted, stop, reason, next_gen, plots,
                     sum(t.reused for t in trained), trials)  # fmt: skip


def _sqn(row: dict | None) -> float:
    value = float(row["sqn"]) if row is not None and pd.notna(row.get("sqn")) else math.nan
    return value if math.isfinite(value) else -math.inf


def _reason(stop: str | None, promoted: dict | None, leader) -> str:
    if promoted:
        return (
            f"promoted {promoted['model_id']}: meets the criteria, beats the baselines, "
            f"deflated sharpe {promoted['deflated_sharpe']:.3f} over {promoted['trials']} "
            "trials"
        )
    if leader is None:
        return f"{stop or 'continue'}: no candidate simulated"
    t, best, verdict = leader
    where = f"best {t.model_id} (SQN {_sqn(best):.3g}) not promoted: {verdict.reason}"
    return f"{stop}: {where}" if stop else where


def _log_rows(gen: Generation, judged: list, trials: int, promoted: dict | None) -> pd.DataFrame:
    now = pd.Timestamp.now(tz="UTC")
    front = set(evo.pareto_front([evo.objectives(best) for _, best, _ in judged]))
    pruned = json.dumps(gen.pruned, sort_keys=True)
    pruning_reason = (
        f"importance <= 0: {len(gen.pruned)} pruned from {gen.parent_id}"
        if gen.generation > 0
        else "seed"
    )
    rows = []
    for number, (t, best, verdict) in enumerate(judged):
        best = best or {}
        is_winner = promoted is not None and promoted["model_id"] == t.model_id
        if is_winner:
            reason = _reason("promoted", promoted, None)
        elif verdict.promoted:
            reason = "passes every test; a candidate of higher SQN was promoted"
        else:
            reason = verdict.reason
        rows.append({
            "evolution_id": gen.evolution_id, "generation": gen.generation,
            "candidate": t.candidate.index, "parent_model_id": t.candidate.parent_id,
            "parent_sqn": t.candidate.parent_sqn, "child_model_id": t.model_id,
            "fingerprint": t.fingerprint, "reused": t.reused, "origin": t.candidate.origin,
            "algorithm": t.candidate.algorithm,
            "params": json.dumps(t.candidate.params, sort_keys=True, default=str),
            "remaining_features": json.dumps(sorted(t.features)), "pruned_features": pruned,
            "pruning_reason": pruning_reason, "best_grid_id": best.get("grid_id"),
            "best_combo": best.get("combo"), "trials": trials,
            **{k: best.get(k) for k in FIGURES},
            "deflated_sharpe": verdict.dsr if math.isfinite(verdict.dsr) else None,
            "pareto": number in front, "promoted": is_winner, "reason": reason,
            "created_at": now,
        })  # fmt: skip
    return pd.DataFrame(rows)


def _promote(
    warehouse: Warehouse,
    registry: ModelRegistry,
    gen: Generation,
    t: TrainedCandidate,
    best: dict,
    verdict: evo.Verdict,
    trials: int,
) -> dict:
    """Register the model version (alias `champion` of `stock-assets-<symbol>`) with the
    simulation that earned it and its lineage; record it in promoted_models."""
    spec = gen.config
    sim = {k: best.get(k) for k in SIM_CONFIG}
    sim_config = json.dumps({**sim, "split": "test", "fold": spec.fold}, default=str)
    ancestry = [s["model_id"] for s in lineage(warehouse, gen.parent_id)] if gen.parent_id else []
    chain = json.dumps([t.model_id, *ancestry])
    name = REGISTERED_PREFIX + spec.symbol
    version = registry.register(registry.get(t.model_id), name, CHAMPION, {
        "evolution_id": gen.evolution_id, "generation": gen.generation,
        "simulation_config": sim_config, "lineage": chain, "deflated_sharpe": verdict.dsr,
        "trials": trials, "sqn": best["sqn"], "profit_factor": best["profit_factor"],
    })  # fmt: skip
    regime = f"{best.get('regime_column') or ''}={best.get('regime_allowed') or ''}"
    row = {
        "model_id": t.model_id, "evolution_id": gen.evolution_id, "generation": gen.generation,
        "symbol": spec.symbol, "deflated_sharpe": verdict.dsr, "trials": trials,
        **{k: best.get(k) for k in (*FIGURES, "sharpe", "total_return", "threshold")},
        "regime": regime.strip("="), "grid_id": best["grid_id"], "combo": int(best["combo"]),
        "simulation_config": sim_config, "features": json.dumps(sorted(t.features)),
        "params": json.dumps(t.candidate.params, sort_keys=True, default=str), "lineage": chain,
        "registered_model": name, "registered_version": version, "mlflow_run_id": t.run_id,
        "promoted_at": pd.Timestamp.now(tz="UTC"),
    }  # fmt: skip
    warehouse.catalog.upsert("promoted_models", pd.DataFrame([row]))
    log_event(log, "evolve", f"promoted {t.model_id} as {name}@{CHAMPION} (version {version})",
              symbol=spec.symbol)  # fmt: skip
    return row
