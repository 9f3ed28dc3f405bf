"""Commands on the event store: API keys, events (export, prune) and erasure of a user."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tailored.cli.common import console, handle_errors, print_table, refuse_overwrite, stdout
from tailored.cli.options import DatabaseUrl, Output

if TYPE_CHECKING:
    from tailored.store import EventStore

app = typer.Typer()
keys_app = typer.Typer(help="API keys of the service.", no_args_is_help=True)
events_app = typer.Typer(help="The event store.", no_args_is_help=True)


def open_store(db: str, create: bool = True) -> EventStore:
    """The event store, pseudonymising user ids when TAILORED_PSEUDONYM_KEY is set (as the service does; a missing
    or wrong key is an error); ``create=False`` (admin commands) refuses a SQLite file that does not exist."""
    from tailored.store import EventStore

    return EventStore(db, os.environ.get("TAILORED_PSEUDONYM_KEY"), create=create)


@keys_app.command("create")
@handle_errors
def keys_create(
    scopes: Annotated[str, typer.Option("--scopes", help="Comma-separated: recommend, events:write, admin.")],
    db: DatabaseUrl = "sqlite:///tailored.db",
) -> None:
    """Create an API key (printed once; only its hash is stored)."""
    key = open_store(db).create_key(scope.strip() for scope in scopes.split(",") if scope.strip())
    stdout.print(key, highlight=False)


@keys_app.command("list")
@handle_errors
def keys_list(db: DatabaseUrl = "sqlite:///tailored.db") -> None:
    """Every API key's id, scopes, creation time and whether it is revoked (secrets are never stored)."""
    print_table(open_store(db, create=False).list_keys(), title="API keys")


@keys_app.command("revoke")
@handle_errors
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id: the part between 'tlr_' and the next '_'.")],
    db: DatabaseUrl = "sqlite:///tailored.db",
) -> None:
    """Revoke a key (audited); running services refuse it within 30 s."""
    open_store(db, create=False).revoke_key(key_id)
    console.print(f"[green]revoked[/] key {key_id}")


@events_app.command("export")
@handle_errors
def events_export(
    output: Output,
    db: DatabaseUrl = "sqlite:///tailored.db",
    items: Annotated[Path | None, typer.Option(
        "--items", help="Catalogue file (item_id column) added to the stored items.")] = None,
) -> None:
    """Write the stored events for `tailored train` (user_id,item_id,value,timestamp,event_type, then event_id and
    received_at, which identify each stored event). Events of items not in the catalogue (the stored items plus
    --items) are held out until the item exists; with no catalogue at all, every event is written."""
    from tailored.data.io import check_table_path, write_table
    from tailored.jobs.export import catalogue_events

    refuse_overwrite({"--output": check_table_path(output)}, {"--items": items})
    frame, held_out, catalogue = catalogue_events(open_store(db, create=False), items)
    write_table(frame, output)
    console.print(f"[green]wrote[/] {len(frame):,} events to {output}"
                  + (f"; held out {held_out:,} event(s) of items not in the catalogue" if held_out else "")
                  + ("" if catalogue else " (no stored items and no --items: every event written)"))


@events_app.command("prune")
@handle_errors
def events_prune(
    days: Annotated[float, typer.Option("--days", help="Retention window: events and exposures older than this go.")],
    db: DatabaseUrl = "sqlite:///tailored.db",
) -> None:
    """Apply the data-retention window (run it daily, e.g. from cron); the deletion is audited."""
    deleted = open_store(db, create=False).prune(days)
    console.print("[green]pruned[/]: " + ", ".join(f"{count} {table}" for table, count in deleted.items()))


@app.command("erase-user")
@handle_errors
def erase_user(
    user_id: Annotated[str, typer.Argument(help="The user to erase.")],
    db: DatabaseUrl = "sqlite:///tailored.db",
) -> None:
    """GDPR erasure: delete the user's events, attributes and exposures, for good; audited without the id."""
    deleted = open_store(db, create=False).erase_user(user_id)
    console.print("[green]erased[/]: " + ", ".join(f"{count} {table}" for table, count in deleted.items()))
