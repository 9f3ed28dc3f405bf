"""Commands on data: check, split, embed, and `tailored datasets ...` (MovieLens, synthetic retail, scale)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tailored.cli import options
from tailored.cli.common import (console, counting, handle_errors, print_table, progress_bar, refuse_overwrite, stdout,
                                 warn)
from tailored.cli.options import (Interactions, ItemCol, ItemsFile, Output, RuleOption, TimeCol, UserCol, UsersFile,
                                  ValueCol)
from tailored.errors import ConfigError

app = typer.Typer()
datasets_app = typer.Typer(help="Generate or fetch data sets.", no_args_is_help=True)


@app.command()
@handle_errors
def check(
    interactions: Interactions,
    users: UsersFile = None,
    items: ItemsFile = None,
    output: Annotated[Path | None, typer.Option(
        "--output", help="Write the accepted rows here (.csv/.parquet); rejected rows go beside it.")] = None,
    report: Annotated[Path | None, typer.Option("--report", help="Write the full report as JSON.")] = None,
    rule: RuleOption = None,
    user_col: UserCol = "user_id",
    item_col: ItemCol = "item_id",
    value_col: ValueCol = "value",
    time_col: TimeCol = "timestamp",
    strict: Annotated[bool, typer.Option("--strict", help="Exit with code 2 when any error-level rule fires.")] = False,
) -> None:
    """Report data problems (missing, duplicate, invalid, future, outlier, unknown ids) and the data's biases."""
    from tailored.data.io import check_table_path, write_table, write_text
    from tailored.jobs import tasks as jobs

    rules = options.quality_rules(rule)
    rejected_path = None if output is None else check_table_path(output).with_name(
        f"{output.stem}.rejected{output.suffix}")
    refuse_overwrite({"--output": output, "--output (its rejected rows)": rejected_path, "--report": report},
                     {"--interactions": interactions, "--users": users, "--items": items})
    columns = options.columns(interactions, user_col, item_col, value_col, time_col)
    result = jobs.check(interactions, users, items, columns, rules)
    stdout.print(result.to_markdown())
    if output is not None:
        write_table(result.clean, output)
        result.write_rejected(rejected_path)
        console.print(f"[green]wrote[/] {len(result.clean):,} accepted rows to {output} and "
                      f"{len(result.rejected):,} rejected rows (with reasons) to {rejected_path}")
    if report is not None:
        write_text(result.to_json(), report)
    if strict:
        result.raise_for_errors()


@app.command()
@handle_errors
def split(
    interactions: Interactions,
    output_dir: Annotated[Path, typer.Option(
        "--output-dir", help="Folder for train.csv, test.csv[, valid.csv], split.json.")],
    method: Annotated[str, typer.Option(
        "--method", help="per_user, random, leave_last_out, leave_one_out_random, temporal, "
                         "cold_users, cold_items.")] = "per_user",
    test_fraction: Annotated[float | None, typer.Option("--test-fraction")] = None,
    fraction: Annotated[float | None, typer.Option(
        "--fraction", help="Share of users/items held out (cold-start splits).")] = None,
    cutoff: Annotated[str | None, typer.Option("--cutoff", help="Temporal cut (ISO date or unix seconds).")] = None,
    horizon_days: Annotated[float | None, typer.Option(
        "--horizon-days", help="Temporal: test = the H days after the cut.")] = None,
    valid_fraction: Annotated[float | None, typer.Option(
        "--valid-fraction", help="Carve a validation set from training only.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed (random splitters; default 42).")] = None,
    users: Annotated[Path | None, typer.Option(
        "--users", help="User attributes (user_id + attributes): also write users_train.csv and users_new.csv, the "
                        "users only test holds.")] = None,
    items: Annotated[Path | None, typer.Option(
        "--items", help="Item attributes (item_id + attributes): also write items_train.csv and items_new.csv, the "
                        "items only test holds.")] = None,
    user_col: UserCol = "user_id",
    item_col: ItemCol = "item_id",
    value_col: ValueCol = "value",
    time_col: TimeCol = "timestamp",
) -> None:
    """Split interactions (frozen to disk for reuse) and prove that no test interaction is in training. With --users
    / --items, their rows are cut in two as well: the new users/items (in test, not in training) for `recommend
    --users/--items`, the others for `train --users/--items`."""
    import pandas as pd

    from tailored.jobs.split import WRITTEN, split_files

    for name in WRITTEN:
        refuse_overwrite({"--output-dir": output_dir / name}, {"--interactions": interactions, "--users": users,
                                                               "--items": items})
    columns = options.columns(interactions, user_col, item_col, value_col, time_col)
    settings = {"test_fraction": test_fraction, "fraction": fraction, "cutoff": cutoff, "horizon_days": horizon_days,
                "seed": seed}
    result, leakage, parts = split_files(interactions, output_dir, method, settings, valid_fraction, users, items,
                                         columns)
    print_table(pd.DataFrame(result.counts).T.reset_index(names="part"), title=f"{method} split")
    console.print(f"[green]no leakage[/] ({leakage}); saved to {output_dir}")
    for part in parts:
        kind, suffix = part.kind, part.suffix
        console.print(f"{kind}_train{suffix}: {part.trained:,} {kind} for `train --{kind}`; {kind}_new{suffix}: "
                      f"{part.new:,} new {kind} (in test, not in training) for `recommend --{kind}`")


@app.command()
@handle_errors
def embed(
    items: Annotated[Path, typer.Option("--items", help="Items file (item_id + attribute columns).")],
    output: Annotated[Path, typer.Option("--output", help="Parquet file: the items with their embedding columns.")],
    text_columns: Annotated[str, typer.Option(
        "--text-columns", help="Text columns to embed together (comma-separated); '' for none.")] = "title",
    image_column: Annotated[str | None, typer.Option("--image-column", help="Column holding image paths.")] = None,
    image_root: Annotated[Path | None, typer.Option(
        "--image-root", help="Folder the image paths are relative to.")] = None,
    vectors: Annotated[Path | None, typer.Option(
        "--vectors", help="Embeddings from any model: a .npy matrix (rows in the items file's order) or a .npz with "
                          "item_id and vectors arrays.")] = None,
    vectors_column: Annotated[str, typer.Option(
        "--vectors-column", help="Name of the column the --vectors become.")] = "image_embedding",
) -> None:
    """Add multimodal item features: a MiniLM text embedding, colour-texture image descriptors and/or embeddings
    computed by any other model (offline)."""
    from tailored.data.io import write_table
    from tailored.jobs.embed import embed_items

    if output.suffix.lower() != ".parquet":
        raise ConfigError(f"--output must be a .parquet file (embedding columns hold arrays), got {output}.")
    refuse_overwrite({"--output": output}, {"--items": items, "--vectors": vectors, "--image-root": image_root})
    columns = [name.strip() for name in text_columns.split(",") if name.strip()]
    with progress_bar("embedding") as bar:
        task = bar.add_task("embed", total=None)
        table, failures = embed_items(items, columns, image_column, image_root,
                                      progress=lambda what, done, total: bar.update(
                                          task, completed=done, total=total, note=f"item {what}"),
                                      vectors=vectors, vectors_column=vectors_column)
    write_table(table, output)
    for row, reason in list(failures.items())[:5]:
        warn(f"item {table['item_id'].iloc[row]!r} (row {row + 2}): {reason}; zero image descriptor")
    if len(failures) > 5:
        warn(f"{len(failures) - 5} more item(s) without a readable image")
    console.print(f"[green]wrote[/] {len(table):,} items with embedding columns to {output}")


@datasets_app.command("movielens")
@handle_errors
def datasets_movielens(
    variant: Annotated[str | None, typer.Option(
        "--variant", help="100k (default), 1m, 10m, 20m, 25m, 32m or latest-small; detected from --data-dir's "
                          "files.")] = None,
    cache_dir: Annotated[Path, typer.Option(
        "--cache-dir", help="Where archives are cached and extracted.")] = Path("data"),
    base_url: Annotated[str | None, typer.Option("--base-url", help="Mirror of the GroupLens archives.")] = None,
    data_dir: Annotated[Path | None, typer.Option(
        "--data-dir", help="An extracted MovieLens folder to read instead of downloading (with --output-dir).")] = None,
    output_dir: Annotated[Path | None, typer.Option(
        "--output-dir", help="Write interactions.csv, items.csv and users.csv / tags.csv here, the inputs of "
                             "`tailored train` and `tailored split`.")] = None,
) -> None:
    """Download a MovieLens archive (checksum verified, cached); prints the extracted folder, or with --output-dir
    writes it as the command line's CSV inputs."""
    from tailored.data.movielens import BASE_URL, download_movielens, load_movielens

    if data_dir is not None and output_dir is None:
        raise ConfigError("--data-dir names a folder to convert: pass --output-dir too.")
    folder = data_dir
    if folder is None:
        variant = variant or "100k"
        with counting(f"downloading ml-{variant}") as progress:
            folder = download_movielens(variant, cache_dir, base_url or BASE_URL, progress=progress)
        if output_dir is None:
            stdout.print(str(folder))
            return
    movielens = load_movielens(folder, variant)
    written = movielens.write(output_dir)
    ratings = movielens.ratings
    console.print(f"[green]wrote[/] {len(ratings):,} ratings of {ratings['user_id'].nunique():,} users and "
                  f"{ratings['item_id'].nunique():,} items (MovieLens {movielens.variant}) to {output_dir}: "
                  + ", ".join(path.name for path in written))


@datasets_app.command("synthetic")
@handle_errors
def datasets_synthetic(
    output_dir: Annotated[Path, typer.Option(
        "--output-dir", help="Folder for interactions.csv, customers.csv, products.csv, complements.csv.")],
    customers: Annotated[int, typer.Option("--customers", min=10)] = 2000,
    products: Annotated[int, typer.Option("--products", min=47)] = 500,
    days: Annotated[int, typer.Option("--days", min=1)] = 730,
    start: Annotated[str, typer.Option("--start", help="First day (ISO date).")] = "2024-01-01",
    seed: Annotated[int, typer.Option("--seed")] = 42,
    context_effects: Annotated[bool, typer.Option(
        "--context-effects", help="Add device and channel columns that change what is bought.")] = False,
) -> None:
    """Generate the seeded synthetic retail data set (two years of purchases and views, a few malformed rows)."""
    from tailored.data.synthetic import generate_retail

    data = generate_retail(n_customers=customers, n_products=products, start=start, days=days, seed=seed,
                           context_effects=context_effects)
    data.write(output_dir)
    console.print(f"[green]wrote[/] {len(data.interactions):,} interactions, {len(data.customers):,} customers and "
                  f"{len(data.products):,} products to {output_dir}")


@datasets_app.command("scale")
@handle_errors
def datasets_scale(
    output: Output,
    users: Annotated[int, typer.Option("--users", min=1)] = 1_000_000,
    items: Annotated[int, typer.Option("--items", min=1)] = 100_000,
    per_user: Annotated[float, typer.Option("--per-user", min=1, help="Mean interactions per user.")] = 8.0,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Generate a large implicit-feedback set (user_id,item_id) for load tests: taste groups, Zipf popularity."""
    from tailored.data.io import check_table_path, write_table
    from tailored.data.synthetic import generate_scale

    check_table_path(output)
    frame = generate_scale(users, items, per_user, seed=seed)
    write_table(frame, output)
    console.print(f"[green]wrote[/] {len(frame):,} interactions of {users:,} users and {items:,} items to {output}")
