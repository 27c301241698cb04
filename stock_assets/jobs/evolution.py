"""The evolution job: a dynamic graph of up to MAX_GENERATIONS generations.

Each generation proposes candidates -> fans out their training -> collects -> fans out
the flat product of (model x grid chunk) -> collects -> selects. Selection yields the next
generation's seed only when the evolution goes on, so after a promotion (or another
stopping condition) the later generations' steps are skipped and the run still succeeds.
The steps are `stock_assets.pipelines.evolution`'s functions. They run in process, or on
Celery workers with STOCK_ASSETS_EXECUTOR=celery (jobs/executors.py).
"""

import dagster as dg

from stock_assets.core.evolution import MAX_GENERATIONS
from stock_assets.jobs.executors import scale_out
from stock_assets.pipelines.specs import EvolutionSpec
from stock_assets.resources.mlflow import MlflowResource
from stock_assets.resources.warehouse import WarehouseResource

RETRY = dg.RetryPolicy(max_retries=2, delay=5)


class EvolutionConfig(dg.Config, EvolutionSpec):
    """An evolution run: see each field (EvolutionSpec)."""


@dg.op(description="Check the configuration and the inputs, record the evolution.")
def start_evolution(
    context: dg.OpExecutionContext,
    config: EvolutionConfig,
    warehouse: WarehouseResource,
    mlflow: MlflowResource,
):
    from stock_assets.pipelines.evolution import start

    spec = EvolutionSpec(**config.model_dump())
    first = start(warehouse.open(), mlflow.open(), spec, context.run_id)
    context.add_output_metadata({"evolution_id": first.evolution_id})
    return first


@dg.op(out=dg.DynamicOut(), description="The generation's candidates, one step each.")
def propose(context: dg.OpExecutionContext, generation):
    from stock_assets.pipelines.evolution import propose as candidates_of

    candidates = candidates_of(generation)
    context.log.info(
        f"generation {generation.generation + 1}: {len(candidates)} candidates "
        f"on {len(generation.features or []) or 'all'} features"
    )
    for candidate in candidates:
        yield dg.DynamicOutput(candidate, mapping_key=f"c{candidate.index}")


@dg.op(retry_policy=RETRY, description="Train a candidate, or reuse the model of its fingerprint.")
def train_candidate(
    context: dg.OpExecutionContext,
    warehouse: WarehouseResource,
    mlflow: MlflowResource,
    candidate,
):
    from stock_assets.pipelines.evolution import train_candidate as train

    trained = train(warehouse.open(), mlflow.open(), candidate, context.run_id)
    context.add_output_metadata(
        {
            "model_id": trained.model_id,
            "reused": trained.reused,
            "features": len(trained.features),
            "origin": candidate.origin,
        }
    )
    return trained


@dg.op(out=dg.DynamicOut(), description="(model x grid chunk) simulation tasks.")
def plan_simulations(generation, trained: list):
    from stock_assets.pipelines.evolution import simulation_tasks

    for number, task in enumerate(simulation_tasks(generation, trained)):
        yield dg.DynamicOutput(task, mapping_key=f"s{number}")


@dg.op(
    retry_policy=RETRY, description="One grid chunk over a candidate's out-of-sample predictions."
)
def simulate_chunk(warehouse: WarehouseResource, mlflow: MlflowResource, task):
    from stock_assets.pipelines.evolution import simulate

    return simulate(warehouse.open(), mlflow.open(), task)


@dg.op(
    out={
        "next": dg.Out(is_required=False, description="The next generation, if any."),
        "summary": dg.Out(description="The generation's candidates, judged."),
    },
    description="Judge the candidates; promote and stop, stop, or seed the next generation.",
)
def select(
    context: dg.OpExecutionContext,
    warehouse: WarehouseResource,
    mlflow: MlflowResource,
    generation,
    trained: list,
    outcomes: list,
):
    from stock_assets.assets.reporting import evolution_metadata
    from stock_assets.pipelines.evolution import select as judge

    store = warehouse.open()
    selection = judge(store, mlflow.open(), generation, trained, outcomes, context.run_id)
    context.log.info(f"generation {selection.generation + 1}: {selection.reason}")
    if selection.next is not None:
        yield dg.Output(selection.next, "next")
    yield dg.Output(
        selection.candidates, "summary", metadata=evolution_metadata(selection, store.root)
    )


@dg.graph(out={"next": dg.GraphOut()})
def generation(seed):
    """One generation: propose -> train (fan out) -> simulate (fan out) -> select."""
    trained = propose(seed).map(train_candidate).collect()
    outcomes = plan_simulations(seed, trained).map(simulate_chunk).collect()
    next_seed, _ = select(seed, trained, outcomes)
    return {"next": next_seed}


@dg.job(
    description="Evolve models for a symbol: per generation train candidates, simulate their "
    "out-of-sample predictions, promote one that meets the criteria, passes the Deflated "
    "Sharpe test and beats the baselines, or prune the best one's features and go on.",
    tags={"kind": "evolution"},
    **scale_out(dg.in_process_executor),
)
def evolution_job():
    seed = start_evolution()
    for number in range(MAX_GENERATIONS):
        seed = generation.alias(f"generation_{number}")(seed)
