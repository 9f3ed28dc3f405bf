"""`tailored benchmark ...`: the measured figures (quality on public protocols, the service under load, durability,
the ANN index). Figures only: nothing here asserts on time."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tailored.cli.common import console, counting, epoch_reporter, handle_errors, print_table, progress_bar, stdout
from tailored.cli.options import Interactions, ModelDir
from tailored.cli.spark import benchmark as spark_benchmark

if TYPE_CHECKING:
    import pandas as pd

app = typer.Typer(help="Measure the engine: MovieLens protocols, re-ranking trade-offs, complementary items, the "
                       "running service, durability under kill -9, the ANN index.", no_args_is_help=True)
DataDir = Annotated[Path, typer.Option("--data-dir", help="The ml-100k folder (u.data, u.item, u1.base, ...).")]
Validation = Annotated[bool, typer.Option("--validation", help="Score on validation carved from each training part.")]
TableOutput = Annotated[Path | None, typer.Option("--output", help="Also write the table (.csv/.parquet).")]
ServiceDatabase = Annotated[str | None, typer.Option("--db", help="Database URL (default: a fresh SQLite file).")]
app.command("spark")(spark_benchmark)


@app.command("movielens-100k")
@handle_errors
def movielens_100k(
    data_dir: DataDir,
    algorithm: Annotated[list[str] | None, typer.Option(
        "--algorithm", help="These algorithms (repeatable); default: all but the torch models.")] = None,
    validation: Validation = False,
    output: TableOutput = None,
) -> None:
    """Every algorithm on the MovieLens protocols P1 (NDCG@10), P2 (HR@10), item cold start (Recall@20 vs random),
    new users' first 5 events as a session, alone and with the users' attributes (NDCG@10) and P3 (RMSE), with fit
    times and epochs."""
    from tailored.benchmarks.movielens import movielens_100k as run_suite
    from tailored.models.neural.training import reporting_epochs

    _check_output(output)
    start = time.perf_counter()
    with progress_bar("benchmark: training", "epoch") as bar, reporting_epochs(epoch_reporter(bar)):
        table = run_suite(data_dir, algorithm, validation, on_row=lambda row: console.print(describe_row(row)))
    for protocol, rows in table.groupby("protocol", sort=False):
        print_table(rows.dropna(axis=1, how="all").drop(columns="protocol").assign(params=rows["params"].astype(str)),
                    title=f"{protocol} ({_part(validation)})")
    _finish(table.astype({"params": str}), start, output)


@app.command("movielens-100k-reranking")
@handle_errors
def movielens_100k_reranking(
    data_dir: DataDir,
    algorithm: Annotated[str, typer.Option("--algorithm", help="The algorithm whose lists are re-ranked.")] = "ease",
    validation: Validation = False,
    output: TableOutput = None,
) -> None:
    """The diversity and exposure stages' accuracy/coverage trade-off on P1 and their overhead per user."""
    from tailored.benchmarks.reranking import reranking_tradeoffs

    _check_output(output)
    start = time.perf_counter()
    table = reranking_tradeoffs(data_dir, algorithm, validation=validation,
                                on_row=lambda row: console.print(describe_tradeoff(row)))
    print_table(table.drop(columns="seconds"), title=f"P1 re-ranking trade-offs ({_part(validation)})")
    _finish(table, start, output)


@app.command("context")
@handle_errors
def context(
    customers: Annotated[int, typer.Option(min=10, help="Generated customers.")] = 2000,
    products: Annotated[int, typer.Option(min=100, help="Generated products.")] = 500,
    days: Annotated[int, typer.Option(min=60, help="Days of history.")] = 730,
    test_days: Annotated[float, typer.Option(min=1, help="The last days, the test.")] = 28.0,
    seed: Annotated[int, typer.Option(help="The generator's seed.")] = 42,
    output: TableOutput = None,
) -> None:
    """The ranker with and without context features on the synthetic retail history with planted device, channel,
    weekend and time-of-day effects: NDCG@10 of each test basket asked in its own context, and the time-of-day
    check (issue 29)."""
    from tailored.benchmarks.context import context_learned

    _check_output(output)
    start = time.perf_counter()
    tables = context_learned(customers, products, days, test_days, seed, say=console.print)
    print_table(tables["accuracy"], title="NDCG@10 per (customer, context) of the last "
                                          f"{test_days:g} days, each asked in its context")
    print_table(tables["time of day"], title="time of day: customers whose top 10 holds more morning than evening "
                                             "products (Tuesday)")
    _finish(tables["accuracy"], start, output)


@app.command("ranker-feedback")
@handle_errors
def ranker_feedback(
    seeds: Annotated[list[int] | None, typer.Option("--seed", help="A world's seed (repeatable; default 0, 1, 2).")
                     ] = None,
    impressions: Annotated[int, typer.Option(min=100, help="Lists logged per world.")] = 40_000,
    logging_policy: Annotated[str, typer.Option(help="The exploring policy that logs them.")] =
    "softmax:temperature=0.5",
    users: Annotated[int, typer.Option(min=10)] = 2_000,
    items: Annotated[int, typer.Option(min=40)] = 1_000,
    output: TableOutput = None,
) -> None:
    """The ranker trained on the engine's own feedback log (position-weighted clicks, or unweighted) against its
    retriever and the ranker trained on a carve, in simulated worlds: expected clicks per list of each model's top 10
    by the hidden truth (issue 29)."""
    from tailored.benchmarks.ranker_feedback import ranker_feedback_benchmark
    from tailored.policies import parse_policy

    _check_output(output)
    parse_policy(logging_policy)
    start = time.perf_counter()
    table = ranker_feedback_benchmark(seeds or [0, 1, 2], impressions, logging_policy, users, items,
                                      say=lambda phase: console.print(f"[dim]{phase}...[/]"))
    print_table(table, title="expected clicks per list of the top 10, by the hidden truth")
    _finish(table, start, output)


def _check_output(output: Path | None) -> None:
    from tailored.data.io import check_table_path

    if output is not None:
        check_table_path(output)


def _part(validation: bool) -> str:
    return "validation" if validation else "test"


def _finish(table: pd.DataFrame, start: float, output: Path | None) -> None:
    from tailored.data.io import write_table

    stdout.print(f"total {time.perf_counter() - start:.1f} s")
    if output is not None:
        write_table(table, output)


def describe_row(row: dict[str, Any]) -> str:
    figures = ", ".join(f"{k} {v:.4f}" for k, v in row.items() if isinstance(v, float) and k != "seconds")
    epochs = f", {row['epochs']} epochs" if row.get("epochs") else ""
    return f"{row['protocol']} {row['algorithm']:<11} {figures}  ({row['seconds']:.2f} s{epochs}) {row['params'] or ''}"


def describe_tradeoff(row: dict[str, Any]) -> str:
    return (f"{row['setting']:<28} NDCG@10 {row['ndcg@10']:.4f} ({row['ndcg_change']:+.1%})  coverage@10 "
            f"{row['coverage@10']:.4f} (x{row['coverage_ratio']:.2f})  overhead "
            f"{row['overhead_ms_per_user']:+.3f} ms/user")


@app.command("complementary")
@handle_errors
def complementary(
    interactions: Interactions,
    basket_col: Annotated[str, typer.Option(
        "--basket-col", help="Column grouping the interactions into baskets.")] = "basket_id",
    pairs: Annotated[Path | None, typer.Option(
        "--pairs", help="Planted pairs (item_id, complement_item_id), e.g. complements.csv of `datasets "
                        "synthetic`.")] = None,
    event_type: Annotated[str | None, typer.Option(
        "--event-type", help="Only rows of this event_type (e.g. purchase).")] = None,
    k: Annotated[int, typer.Option("--k", min=1)] = 10,
    min_count: Annotated[int, typer.Option("--min-count", min=1)] = 5,
) -> None:
    """Complementary items against "most bought" on a temporal split of baskets: hit rate@k of the basket's other
    items and mean lift of the listed pairs (and the planted partners' top-k rate with --pairs)."""
    from tailored.benchmarks.baskets import complementary_benchmark
    from tailored.data.io import read_table
    from tailored.jobs.tasks import ColumnNames, read_valid

    frame = read_valid(interactions, ColumnNames(basket=basket_col))
    if event_type is not None:
        frame = frame[frame["event_type"] == event_type]
    table, partners = complementary_benchmark(frame, read_table(pairs) if pairs is not None else None, k, min_count)
    print_table(table, title=f"complementary items on {interactions} (temporal split of baskets, k={k})")
    if partners is not None:
        stdout.print(f"planted partner in the item's top-{k}: {partners:.4f}")


@app.command("service")
@handle_errors
def service(
    model_dir: ModelDir,
    db: ServiceDatabase = None,
    events: Annotated[int, typer.Option("--events", min=1, help="Events posted in batches.")] = 100_000,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 1_000,
    rate: Annotated[float, typer.Option(
        "--rate", min=1, help="Recommendation requests per second (open loop).")] = 1_000.0,
    seconds: Annotated[float, typer.Option("--seconds", min=1, help="Length of the load phase.")] = 60.0,
    connections: Annotated[int, typer.Option("--connections", min=1)] = 32,
    event_rate: Annotated[float, typer.Option("--event-rate", min=1, help="Single-event POSTs per second.")] = 600.0,
    phase_seconds: Annotated[float, typer.Option(
        "--phase-seconds", min=1, help="Length of the other timed phases.")] = 10.0,
    policy: Annotated[str, typer.Option("--policy", help="The policy served (tailored serve --policy).")] = "greedy",
) -> None:
    """Start `tailored serve` and measure it from outside: batch and single-event ingestion, one-connection latency,
    recommendations at --rate for --seconds (p50/p99 from the load generator, errors, server memory), twice the rate
    (shedding), and the recall@10 of the served ANN index."""
    from tailored.benchmarks.service import service_benchmark

    figures = service_benchmark(model_dir, db, events, batch_size, rate, seconds, connections, event_rate,
                                phase_seconds, say=lambda phase: console.print(f"[dim]{phase}...[/]"), policy=policy)
    _print_figures(figures)


@app.command("latency")
@handle_errors
def latency(
    model_dirs: Annotated[list[Path], typer.Option(
        "--model-dir", help="A model directory written by `tailored train` (repeat to compare several).")],
    requests: Annotated[int, typer.Option("--requests", min=1, help="Requests per model.")] = 2_000,
    k: Annotated[int, typer.Option("--k", min=1, help="Items per list.")] = 10,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Milliseconds per recommendation in process, one request at a time on one thread, for the same random known
    users of each model (p50, p99, mean): what a model costs per request, without the service around it."""
    import pandas as pd

    from tailored.benchmarks.latency import latency_benchmark

    print_table(pd.DataFrame(latency_benchmark(model_dirs, requests, k, seed)), title="one request at a time")


@app.command("feedback")
@handle_errors
def feedback(
    model_dir: ModelDir,
    db: ServiceDatabase = None,
    lists: Annotated[int, typer.Option("--lists", min=1, help="Thompson lists fetched, then clicked back.")] = 2_000,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Clicks per POST.")] = 100,
    clients: Annotated[int, typer.Option("--clients", min=1, help="Concurrent clients posting clicks.")] = 8,
    rate: Annotated[float, typer.Option(
        "--rate", min=1, help="Recommendation requests per second (open loop) of the latency phase.")] = 100.0,
    seconds: Annotated[float, typer.Option("--seconds", min=1, help="Length of the latency phase.")] = 10.0,
    connections: Annotated[int, typer.Option("--connections", min=1)] = 8,
) -> None:
    """Start `tailored serve` under greedy, then thompson, on one model: the lists' latency under each, then clicks
    on thompson's lists posted back with their exposure ids (events/s stored, attributed and learnt, checked
    against the policy's own tally)."""
    from tailored.benchmarks.feedback import feedback_benchmark

    figures = feedback_benchmark(model_dir, db, lists, batch_size, clients, rate, seconds, connections,
                                 say=lambda phase: console.print(f"[dim]{phase}...[/]"))
    _print_figures(figures)


def _print_figures(figures: dict[str, Any]) -> None:
    for name, value in figures.items():
        if isinstance(value, float):
            shown = f"{value:.4f}" if abs(value) < 10 else f"{value:,.2f}"
        else:
            shown = f"{value:,}" if isinstance(value, int) else str(value)
        stdout.print(f"{name:<34} {shown}")


@app.command("durability")
@handle_errors
def durability(
    model_dir: ModelDir,
    db: ServiceDatabase = None,
    trials: Annotated[int, typer.Option("--trials", min=1)] = 100,
    clients: Annotated[int, typer.Option("--clients", min=1)] = 4,
) -> None:
    """kill -9 `tailored serve` while clients post events, --trials times, then count acknowledged events lost and
    events stored twice (both must be 0)."""
    from tailored.benchmarks.durability import durability_benchmark

    with counting("kill -9 trials") as progress:
        figures = durability_benchmark(model_dir, db, trials, clients,
                                       progress=lambda done, total, acked: progress(done, total))
    for name, value in figures.items():
        stdout.print(f"{name:<40} {value:,}")


@app.command("ann")
@handle_errors
def ann(
    items: Annotated[int, typer.Option("--items", min=10)] = 100_000,
    factors: Annotated[int, typer.Option("--factors", min=2)] = 64,
    queries: Annotated[int, typer.Option("--queries", min=10)] = 1_000,
) -> None:
    """Recall@10 of the approximate (HNSW) item index against exact scoring, and ms per single-user query."""
    import pandas as pd

    from tailored.benchmarks.service import ann_benchmark

    print_table(pd.DataFrame(ann_benchmark(items, factors, queries)), title=f"{items:,} items x {factors} factors")


@app.command("open-bandit")
@handle_errors
def open_bandit(
    campaign: Annotated[str, typer.Option("--campaign", help="all, men or women.")] = "all",
    samples: Annotated[int, typer.Option("--samples", min=100, help="Bootstrap resamples.")] = 1000,
    output: TableOutput = None,
) -> None:
    """The Open Bandit Dataset sample shipped with obp: the Random policy's click rate estimated from the Bernoulli
    Thompson Sampling logs, each estimate with its 95 % interval beside Random's on-policy rate."""
    from tailored.benchmarks.ope import open_bandit as run_open_bandit

    _check_output(output)
    start = time.perf_counter()
    table = run_open_bandit(campaign, samples=samples)
    print_table(table, title=f"Open Bandit ({campaign}): Random's click rate from the BTS logs "
                             f"(BTS on-policy {table.attrs['bts_on_policy']:.5f})")
    for warning in table.attrs["warnings"]:
        console.print(f"warning: {warning}")
    _finish(table, start, output)


@app.command("ope")
@handle_errors
def ope(
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="Simulated worlds (one seed each).")] = 20,
    impressions: Annotated[int, typer.Option("--impressions", min=100, help="Lists shown per run.")] = 10_000,
    scenario: Annotated[str, typer.Option("--scenario", help="static, new-items or drift.")] = "static",
    speed_impressions: Annotated[int, typer.Option(
        "--speed-impressions", min=0, help="Logged impressions of the speed run (0: skip it).")] = 1_000_000,
    logging_policy: Annotated[str, typer.Option(
        "--logging-policy", help="The exploring policy whose logs are evaluated, e.g. thompson.")
    ] = "softmax:temperature=0.5",
    target: Annotated[list[str] | None, typer.Option(
        "--target", help="Target policies (repeatable). Default: greedy, epsilon-greedy:epsilon=0.1.")] = None,
    output: TableOutput = None,
) -> None:
    """Off-policy estimates against the truth: per seed, an exploring policy's log estimates greedy's and a second
    policy's click rate (SNIPS, DR), beside the rate each earns online in the same world; then every estimator's
    speed on a million logged impressions."""
    from tailored.benchmarks.ope import ACCURACY_TARGETS, accuracy, accuracy_summary, speed

    _check_output(output)
    start = time.perf_counter()
    table = accuracy(seeds, impressions, scenario, logging_policy, target or ACCURACY_TARGETS,
                     on_row=lambda row: console.print(
        f"seed {row['seed']:>2} {row['target']:<26} {row['estimator']:<6} online {row['online']:.4f} estimate "
        f"{row['estimate']:.4f} [{row['ci_low']:.4f}, {row['ci_high']:.4f}] error {row['error']:+.1%}"))
    print_table(accuracy_summary(table), title=f"OPE accuracy ({scenario}, {logging_policy}'s logs, {seeds} seeds, "
                                               f"{impressions} lists each)")
    if speed_impressions:
        print_table(speed(speed_impressions), title=f"OPE speed ({speed_impressions:,} logged impressions)")
    _finish(table, start, output)


@app.command("exploration")
@handle_errors
def exploration(
    policy: Annotated[list[str] | None, typer.Option(
        "--policy", help="Policies (repeatable); the first is the baseline. Default: greedy, thompson.")] = None,
    scenario: Annotated[list[str] | None, typer.Option(
        "--scenario", help="Worlds (repeatable): new-items, static, drift. Default: new-items, static.")] = None,
    impressions: Annotated[int, typer.Option("--impressions", min=100, help="Lists shown per policy.")] = 200_000,
    seed: Annotated[int, typer.Option("--seed", help="The world's seed.")] = 0,
    users: Annotated[int | None, typer.Option("--users", min=10, help="Users of the world.")] = None,
    items: Annotated[int | None, typer.Option("--items", min=20, help="Items of the world.")] = None,
    output: TableOutput = None,
) -> None:
    """Exploration against greedy in simulated worlds: clicks over the second half of the run, their ratio to the
    baseline's, regret per list; new-items (target: the best exploring policy >= 1.10x greedy) and static (each
    exploring policy >= 0.97x)."""
    from tailored.benchmarks.exploration import POLICIES, SCENARIOS, describe, exploration_benchmark

    _check_output(output)
    start = time.perf_counter()
    table = exploration_benchmark(policy or POLICIES, scenario or SCENARIOS, impressions, seed, users, items,
                                  on_row=lambda row: console.print(describe(row)))
    print_table(table.drop(columns=["target", "baseline"]), title=f"Exploration (seed {seed}, {impressions:,} lists)")
    _finish(table, start, output)


@app.command("experiments")
@handle_errors
def experiments(
    aa_runs: Annotated[int, typer.Option("--aa-runs", min=1, help="A/A experiments per generator.")] = 200,
    aa_users: Annotated[int, typer.Option("--aa-users", min=200, help="Users per arm in each A/A run.")] = 20_000,
    power_runs: Annotated[int, typer.Option("--power-runs", min=1, help="+5 % runs per generator.")] = 100,
    power_users: Annotated[int, typer.Option("--power-users", min=200, help="Users per arm, +5 % runs.")] = 200_000,
    cuped_runs: Annotated[int, typer.Option("--cuped-runs", min=1, help="Runs per CUPED setting.")] = 100,
    cuped_users: Annotated[int, typer.Option("--cuped-users", min=200, help="Users per arm, CUPED.")] = 50_000,
    generator: Annotated[list[str] | None, typer.Option(
        "--generator", help="Traffic generators (repeatable): typical, homogeneous, heterogeneous, busy, sparse. "
                            "Default: all.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="The simulations' seed.")] = 0,
    output: TableOutput = None,
) -> None:
    """Experiment statistics against simulated truth: the assignment's 50/50 split of 1,000,000 ids and its speed;
    the share of A/A experiments read after every day that declare a winner (target <= 5 %); the share of +5 %
    click-rate experiments at 200,000 users per arm that ship (target >= 80 %); CUPED's interval width ratio on
    revenue per user (target <= 0.8)."""
    import pandas as pd

    from tailored.benchmarks.experiments import GENERATORS, experiments_benchmark

    _check_output(output)
    unknown = sorted(set(generator or ()) - set(GENERATORS))
    if unknown:
        raise typer.BadParameter(f"Unknown generator(s) {unknown}: choose from {', '.join(GENERATORS)}.",
                                 param_hint="--generator")
    start = time.perf_counter()
    tables = experiments_benchmark(aa_runs, aa_users, power_runs, power_users, cuped_runs, cuped_users,
                                   tuple(generator or GENERATORS), seed, on_row=lambda row: console.print(
                                       f"{row['generator']:<14} lift {row['lift']:+.0%} ship {row['ship']:.1%} "
                                       f"roll back {row['roll_back']:.1%} (fixed test peeked daily "
                                       f"{row['fixed_test_peeked']:.1%})"))
    for name, table in tables.items():
        print_table(table, title=f"Experiments: {name}")
    _finish(pd.concat(tables, names=["part"]).reset_index(level=0), start, output)


@app.command("loop")
@handle_errors
def loop(
    users: Annotated[int, typer.Option("--users", min=50, help="Users of the drifting world.")] = 2_000,
    items: Annotated[int, typer.Option("--items", min=40, help="Items of the drifting world.")] = 1_000,
    days: Annotated[int, typer.Option("--days", min=3, help="Daily cycles.")] = 30,
    lists_per_day: Annotated[int, typer.Option("--lists-per-day", min=100, help="Lists shown a day.")] = 4_000,
    canary_share: Annotated[int, typer.Option("--canary-share", min=1, max=50, help="Canary traffic (%).")] = 30,
    corruption: Annotated[str, typer.Option("--corruption", help="The bad candidate's window: remap or shuffle.")
                          ] = "remap",
    no_gate: Annotated[bool, typer.Option("--no-gate", help="Turn the offline gate off (the canary must catch "
                                                              "the bad candidate).")] = False,
    taste: Annotated[float, typer.Option("--taste", min=0.0, help="Spread of users' tastes (1.2: the simulator's "
                                                                   "default; larger: tastes weigh more).")] = 1.2,
    seed: Annotated[int, typer.Option("--seed", help="The world's seed.")] = 0,
    output: Annotated[Path | None, typer.Option("--output", help="Also write the figures (.json).")] = None,
) -> None:
    """A simulated month of daily `tailored loop` cycles in a world whose tastes drift, beside a model retrained daily
    by hand and one never retrained: click rates and their ratios (targets: the loop within 5 % of daily, never
    retrained >= 15 % below), and the fate of a candidate trained on a corrupted window (caught offline, or rolled
    back by the canary within its share)."""
    import json

    from tailored.benchmarks.loop import MonthSpec, loop_month
    from tailored.data.io import write_text

    if output is not None and output.suffix != ".json":
        raise typer.BadParameter("the figures are JSON: name a .json file", param_hint="--output")
    spec = MonthSpec(users=users, items=items, days=days, lists_per_day=lists_per_day, canary_share=canary_share,
                     corruption=corruption, gate_min_gain=-1.0 if no_gate else MonthSpec.gate_min_gain, taste=taste,
                     seed=seed)
    start = time.perf_counter()
    figures = loop_month(spec, say=lambda text: console.print(text))
    stdout.print(json.dumps(figures, indent=2, default=str))
    if output is not None:
        write_text(json.dumps(figures, indent=2, default=str), output)
    console.print(f"total {time.perf_counter() - start:.1f} s")
