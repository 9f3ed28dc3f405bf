"""Commands that write lists from a saved model: recommend, batch, predict, similar, complementary, trending."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tailored.cli import options
from tailored.cli.common import console, counting, exactly_one, handle_errors, refuse_overwrite, warn
from tailored.cli.options import ContextOption, ModelDir, Output, PerItem, PipelineOption, QueryItems, StageOption
from tailored.cli.store import open_store

if TYPE_CHECKING:
    from tailored.jobs.recommend import Lists

app = typer.Typer()


@app.command()
@handle_errors
def recommend(
    model_dir: ModelDir,
    output: Output,
    k: Annotated[int, typer.Option("--k", min=1, help="Number of recommendations per user.")] = 10,
    users: Annotated[Path | None, typer.Option(
        "--users", help="File with a user_id column (and attributes of new users).")] = None,
    all_users: Annotated[bool, typer.Option("--all-users", help="Recommend for every training user.")] = False,
    items: Annotated[Path | None, typer.Option(
        "--items", help="New items (item_id + attribute columns) to add to the catalogue.")] = None,
    candidates: Annotated[Path | None, typer.Option(
        "--candidates", help="Rank only the item ids of this file (an item_id column).")] = None,
    context: ContextOption = None,
    calendar: Annotated[Path | None, typer.Option(
        "--calendar", help="Events calendar (TOML) adjusting the scores; built-in French retail events "
                           "included.")] = None,
    rules: Annotated[Path | None, typer.Option(
        "--rules", help="Business rules (TOML): filters, pinned/promoted items, repurchase cycles, max share.")] = None,
    stage: StageOption = None,
    pipeline: PipelineOption = None,
    explain: Annotated[bool, typer.Option(
        "--explain", help="Add a reasons column (history item, event, season, rule...).")] = False,
) -> None:
    """Write the top-k items per user (user_id,item_id,score,rank,model[,reasons]), training items excluded. New users
    described by attribute columns in --users and new items described in --items are scored from their attributes.
    --calendar, --rules, --stage and --pipeline add request-time stages after the model's own."""
    from tailored.data.io import check_table_path
    from tailored.jobs.recommend import recommend_files

    exactly_one(users, all_users, "Give exactly one of --users FILE or --all-users.")
    check_table_path(output)
    refuse_overwrite({"--output": output}, {"--model-dir": model_dir, "--users": users, "--items": items,
                                            "--candidates": candidates, "--calendar": calendar, "--rules": rules,
                                            "--pipeline": pipeline})
    request_context, stages = options.context(context), options.stages(stage, pipeline)
    with counting("recommending") as progress:
        lists = recommend_files(model_dir, k, users, items, candidates, request_context, stages, calendar, rules,
                                explain, progress)
    written(lists, output, f"recommendations for {lists.frame['user_id'].nunique():,} users")


@app.command()
@handle_errors
def batch(
    model_dir: ModelDir,
    k: Annotated[int, typer.Option("--k", min=1, help="Items per user.")] = 10,
    users: Annotated[Path | None, typer.Option("--users", help="File with a user_id column.")] = None,
    all_users: Annotated[bool, typer.Option("--all-users", help="Every user of the model.")] = False,
    output: Annotated[Path | None, typer.Option(
        "--output", help="Output file (.csv or .parquet), written atomically.")] = None,
    db: Annotated[str | None, typer.Option(
        "--db", help="Or append to the batch_recommendations table of this database.")] = None,
    chunk_users: Annotated[int, typer.Option("--chunk-users", min=1, help="Users per chunk (bounds memory).")] = 10_000,
    context: ContextOption = None,
    erasures_from: Annotated[str | None, typer.Option(
        "--erasures-from", help="With --output: leave out the users erased in this database (a --db batch always "
                                "does).")] = None,
) -> None:
    """Personalised lists for CRM campaigns (user_id,item_id[,title],score,rank; a --db table gets no title),
    streamed in chunks with a progress bar."""
    from tailored.jobs.batch import batch_to_file, batch_to_store

    exactly_one(users, all_users, "Give exactly one of --users FILE or --all-users.")
    exactly_one(output, db, "Give exactly one of --output FILE or --db URL.")
    refuse_overwrite({"--output": output}, {"--model-dir": model_dir, "--users": users})
    request_context = options.context(context)
    erasures = open_store(erasures_from, create=False) if erasures_from is not None else None
    with counting("batch") as progress:
        if output is not None:
            rows = batch_to_file(model_dir, output, k, users, chunk_users, request_context, erasures, progress)
        else:
            batch_id, rows = batch_to_store(model_dir, open_store(db), k, users, chunk_users, request_context, progress)
    console.print(f"[green]wrote[/] {rows:,} recommendations to " + (str(output) if output is not None
                                                                    else f"batch {batch_id} of {db}"))


@app.command()
@handle_errors
def predict(
    model_dir: ModelDir,
    pairs: Annotated[Path, typer.Option("--pairs", help="File with user_id,item_id columns.")],
    output: Output,
) -> None:
    """Predict a value (rating for explicit models, score otherwise) for each user-item pair."""
    from tailored.data.io import check_table_path, read_table, write_table
    from tailored.jobs.tasks import predict as predict_pairs

    check_table_path(output)
    refuse_overwrite({"--output": output}, {"--model-dir": model_dir, "--pairs": pairs})
    frame = predict_pairs(model_dir, read_table(pairs))
    write_table(frame, output)
    console.print(f"[green]wrote[/] {len(frame):,} predictions to {output}")


@app.command()
@handle_errors
def similar(
    model_dir: ModelDir,
    items: QueryItems,
    output: Output,
    k: PerItem = 10,
) -> None:
    """Write the k most similar items of each query item (item_id,similar_item_id[,title],score,rank): collaborative
    and attribute similarity blended."""
    from tailored.data.io import check_table_path
    from tailored.jobs.items import similar_lists

    check_table_path(output)
    refuse_overwrite({"--output": output}, {"--model-dir": model_dir, "--items": items})
    lists = similar_lists(model_dir, items, k)
    written(lists, output, f"similar items for {lists.frame['item_id'].nunique():,} items")


@app.command()
@handle_errors
def complementary(
    model_dir: ModelDir,
    items: QueryItems,
    output: Output,
    k: PerItem = 10,
    min_count: Annotated[int, typer.Option("--min-count", min=1, help="Baskets a pair must share to count.")] = 5,
    backfill: Annotated[bool, typer.Option(
        "--backfill/--no-backfill", help="Fill short lists with the most bought items.")] = True,
) -> None:
    """Write the items bought together with each query item, ranked by confidence x sqrt(lift), then (--backfill)
    the most bought items (item_id,complementary_item_id[,title],score,lift,confidence,support,rank,source)."""
    from tailored.data.io import check_table_path
    from tailored.jobs.items import complementary_lists

    check_table_path(output)
    refuse_overwrite({"--output": output}, {"--model-dir": model_dir, "--items": items})
    lists = complementary_lists(model_dir, items, k, min_count, backfill)
    written(lists, output, f"complements for {lists.frame['item_id'].nunique():,} items")


@app.command()
@handle_errors
def trending(
    model_dir: ModelDir,
    output: Output,
    k: Annotated[int, typer.Option("--k", min=1, help="Number of items.")] = 10,
    items: Annotated[Path | None, typer.Option(
        "--items", help="Only these items (an item_id column), e.g. one category.")] = None,
    window_days: Annotated[int, typer.Option(
        "--window-days", min=1, help="Recent window, against the days before it.")] = 7,
    min_count: Annotated[int, typer.Option("--min-count", min=1, help="Interactions an item needs in the window.")] = 3,
) -> None:
    """Write the items rising fastest at the end of the training data
    (item_id[,title],score,window_count,expected_count,rank)."""
    from tailored.data.io import check_table_path
    from tailored.jobs.items import trending_lists

    check_table_path(output)
    refuse_overwrite({"--output": output}, {"--model-dir": model_dir, "--items": items})
    lists, as_of = trending_lists(model_dir, k, window_days, min_count, items)
    written(lists, output, f"trending items (last {window_days} days to {as_of})")


def written(lists: Lists, output: Path, what: str) -> None:
    """Print the lists' warnings, write their table to ``output`` and say what was written (``what``)."""
    from tailored.data.io import write_table

    for warning in lists.warnings:
        warn(warning)
    write_table(lists.frame, output)
    console.print(f"[green]wrote[/] {len(lists.frame):,} {what} to {output}")
