"""`tailored logs export`: the exposure log (what was shown, where, with which propensity) and its rewards."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tailored.cli.common import console, handle_errors, refuse_overwrite
from tailored.cli.options import DatabaseUrl, Output
from tailored.errors import ConfigError

app = typer.Typer(help="The exposure log.", no_args_is_help=True)


@app.command("export")
@handle_errors
def export(
    output: Output,
    db: DatabaseUrl = "sqlite:///tailored.db",
    window_hours: Annotated[float, typer.Option(
        "--window-hours", help="How long after a list an event is attributed to it (hours).")] = 24.0,
) -> None:
    """Write the feedback log for off-policy evaluation: one row per shown position (exposure_id, user_id, position,
    item_id, propensity, policy, model_version, created_at) with the click, purchase and revenue attributed to it
    (an event's exposure_id when valid, else the user's latest list showing the item within the window). User ids
    are as stored: pseudonyms when TAILORED_PSEUDONYM_KEY is set; erased users never appear."""
    import sqlalchemy as sa

    from tailored.cli.store import open_store
    from tailored.data.io import check_table_path, write_table
    from tailored.jobs.logs import feedback_log_frame

    if not 0 < window_hours < float("inf"):
        raise ConfigError(f"--window-hours must be a positive number of hours, got {window_hours}.")
    database = sa.engine.make_url(db).database if db.startswith("sqlite:") else None
    refuse_overwrite({"--output": check_table_path(output)}, {"--db": Path(database) if database else None})
    frame = feedback_log_frame(open_store(db, create=False), window_hours * 3600)
    write_table(frame, output)
    console.print(f"[green]wrote[/] {len(frame):,} shown positions of {frame['exposure_id'].nunique():,} exposures "
                  f"({int(frame['click'].sum()):,} clicked, {int(frame['purchase'].sum()):,} purchased) to {output}")
