"""The store's Alembic migrations on SQLite and PostgreSQL: the schema they make is the one the tables declare, a
database of the ``schema_version`` era is adopted without loss, older revisions are upgraded in place, and processes
opening a new database at once migrate it once."""

from __future__ import annotations

import hashlib
import hmac
import json
import multiprocessing
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from tailored.errors import ConfigError
from tailored.store import EventStore, migrations, schema
from tailored.store.database import Event, engine_for, exposure_row
from tailored.store.migrations import head, revision

REPOSITORY = Path(__file__).resolve().parents[2]
LEGACY = Path(__file__).with_name("legacy")


def schema_drift(engine: sa.Engine) -> list:
    """What differs between the database's schema and the tables `schema` declares (Alembic's autogenerate)."""
    with engine.connect() as connection:
        return compare_metadata(MigrationContext.configure(connection), schema.metadata)


def tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def test_a_new_database_gets_exactly_the_declared_schema_at_the_head_revision(store) -> None:
    made = store()
    alembic_head = ScriptDirectory(str(Path(migrations.__file__).parent)).get_current_head()
    assert made.version == head() == alembic_head == "0007" and schema_drift(made.engine) == []
    assert tables(made.engine) == set(schema.metadata.tables) | {"alembic_version"}


def test_reopening_keeps_the_data_and_the_revision(store) -> None:
    store().append_events([Event("e1", "u1", "i1", "view")])
    again = store()
    assert again.version == head() and again.count_events() == 1
    with again.engine.connect() as connection:
        assert connection.execute(sa.text("select version_num from alembic_version")).scalars().all() == [head()]


def restore_legacy(url: str) -> None:
    """The database of ``legacy/``: made by the store's code before Alembic, with a little of everything."""
    engine = engine_for(url)
    script = (LEGACY / f"schema_version_3.{engine.dialect.name}.sql").read_text()
    raw = engine.raw_connection()
    try:
        if engine.dialect.name == "sqlite":
            raw.driver_connection.executescript(script)
        else:
            raw.cursor().execute(script)
        raw.commit()
    finally:
        raw.close()
        engine.dispose()


def test_a_database_of_the_schema_version_era_is_stamped_and_keeps_everything(store, database_url) -> None:
    restore_legacy(database_url)
    adopted = store()
    assert adopted.version == head() and schema_drift(adopted.engine) == []
    assert "schema_version" not in tables(adopted.engine)
    exported = next(adopted.export_events())
    assert exported["event_id"].tolist() == ["e1", "e2"] and exported["user_id"].tolist() == ["alice", "bob"]
    assert adopted.user_attributes("alice") == {"age": 30} and adopted.item_ids() == {"i1"}
    assert adopted.is_erased("carol") and not adopted.is_erased("bob")  # the installation's secret was kept
    assert adopted.append_events([Event("e9", "carol", "i1", "view")]) == (0, 1)
    assert [entry["action"] for entry in adopted.audit_entries()] == ["erase_user"]
    with adopted.engine.connect() as connection:
        assert connection.execute(sa.text("select user_id from batch_recommendations")).scalars().all() == ["bob"]
        assert connection.execute(sa.text("select count(*) from exposures")).scalar() == 1


def test_a_version_1_database_of_the_schema_version_era_gets_the_later_revisions(store, database_url) -> None:
    restore_legacy(database_url)
    engine = engine_for(database_url)
    with engine.begin() as connection:  # as migration 1 left it
        connection.execute(sa.text("drop index ix_erasures_erased_at"))
        connection.execute(sa.text("drop table store_settings"))
        connection.execute(sa.text("drop table batch_recommendations"))
        connection.execute(sa.text("delete from schema_version where version > 1"))
    engine.dispose()
    upgraded = store()
    assert upgraded.version == head() and schema_drift(upgraded.engine) == [] and upgraded.count_events() == 2


def test_a_database_of_a_newer_revision_is_refused_as_it_is(store) -> None:
    made = store()
    made.append_events([Event("e1", "u1", "i1", "view")])
    with made.engine.begin() as connection:
        connection.execute(sa.text("update alembic_version set version_num = '9999'"))
    with pytest.raises(ConfigError, match="at schema revision 9999, made by a newer tailored than this one"):
        store()
    assert made.count_events() == 1


def back_to(engine: sa.Engine, version: int) -> None:
    """The database as revision ``000<version>`` left it."""
    with engine.begin() as connection:
        if version < 7:
            connection.execute(sa.text("alter table exposures drop column scores"))
        if version < 6:
            for table in (schema.daily_metrics, schema.trainings, schema.alerts):
                table.drop(connection)
        if version < 5:
            schema.experiments.drop(connection)
            schema.experiment_exclusions.drop(connection)
            for column in ("experiment", "arm", "latency_ms"):
                connection.execute(sa.text(f"alter table exposures drop column {column}"))
        if version < 4:
            for table, column in (("events", "exposure_id"), ("exposures", "policy"), ("exposures", "propensities"),
                                  ("exposures", "context")):
                connection.execute(sa.text(f"alter table {table} drop column {column}"))
        if version < 3:
            connection.execute(sa.text("drop index ix_erasures_erased_at"))
            schema.store_settings.drop(connection)
        if version < 2:
            schema.batch_recommendations.drop(connection)
        connection.execute(sa.text("update alembic_version set version_num = :revision"),
                           {"revision": f"{version:04d}"})


def test_a_revision_1_database_is_migrated_in_place(store) -> None:
    back_to(store().engine, 1)
    with store().engine.connect() as connection:
        assert revision(connection) == head()
    reopened = store()
    reopened.append_events([Event("e1", "u1", "i1", "view")])
    reopened.write_batch("b1", pd.DataFrame({"user_id": ["u1"], "item_id": ["i2"], "score": [1.0], "rank": [1]}))
    assert reopened.count_events() == 1 and schema_drift(reopened.engine) == []


def test_exposures_logged_before_revision_4_read_as_greedy_lists(store) -> None:
    made = store()
    made.log_exposure("u1", "m1", ["i1", "i2", "i3"])
    made.append_events([Event("e1", "u1", "i2", "click", timestamp=time.time())])
    back_to(made.engine, 3)
    with made.engine.begin() as connection:
        connection.execute(sa.text("insert into exposures (exposure_id, user_id, model_version, items, created_at) "
                                   "values ('old', 'u2', 'm0', '[\"i9\"]', 1.0), ('empty', 'u3', 'm0', '[]', 2.0)"))
    upgraded = store()
    assert upgraded.version == head() and schema_drift(upgraded.engine) == []
    with upgraded.engine.connect() as connection:
        rows = connection.execute(sa.select(schema.exposures.c.user_id, schema.exposures.c.policy,
                                            schema.exposures.c.propensities, schema.exposures.c.context)
                                  .order_by(schema.exposures.c.user_id)).all()
        events = connection.execute(sa.select(schema.events.c.exposure_id)).scalars().all()
    assert [tuple(row) for row in rows] == [("u1", "greedy", [1.0, 1.0, 1.0], {}), ("u2", "greedy", [1.0], {}),
                                            ("u3", "greedy", [], {})]
    assert events == [None]


def test_exposures_logged_before_revision_7_read_without_scores_and_new_ones_keep_them(store) -> None:
    made = store()
    made.log_exposures([exposure_row("u1", "m1", ["i1", "i2"], scores=[2.0, 1.0]) | {"created_at": 1.0}])
    back_to(made.engine, 6)
    with made.engine.begin() as connection:
        assert "scores" not in {column["name"] for column in sa.inspect(connection).get_columns("exposures")}
        connection.execute(schema.exposures.insert(), [
            {"exposure_id": "old", "user_id": "u2", "model_version": "m0", "items": ["i9"], "created_at": 2.0,
             "policy": "greedy", "propensities": [1.0], "context": {}}])
    upgraded = store()
    assert upgraded.version == head() == "0007" and schema_drift(upgraded.engine) == []
    upgraded.log_exposures([exposure_row("u3", "m1", ["i3"], scores=[0.5]) | {"created_at": 3.0}])
    with upgraded.engine.connect() as connection:
        rows = connection.execute(sa.select(schema.exposures.c.exposure_id, schema.exposures.c["items"],
                                            schema.exposures.c.scores).order_by(schema.exposures.c.created_at)).all()
    assert [(row[1], row[2]) for row in rows] == [(["i1", "i2"], None), (["i9"], None), (["i3"], [0.5])]
    assert rows[1][0] == "old" and upgraded.served_scores(0.0, 10.0)["score"].tolist() == [0.5]


def test_erasure_fingerprints_are_keyed_by_a_secret_of_the_installation(store, tmp_path) -> None:
    events, users = store(), [f"user{number}" for number in range(33)]
    for user in users:
        events.erase_user(user)
    erased = events.erased_subjects()
    enumerated = {hmac.new(b"tailored-audit", user.encode(), hashlib.sha256).hexdigest() for user in users}
    assert len(erased) == 33 and not erased & enumerated  # the built-in key re-identifies nobody
    assert all(events.is_erased(user) for user in users)
    other = EventStore(f"sqlite:///{tmp_path / 'other.db'}")
    other.erase_user("user0")
    assert other.erased_subjects().isdisjoint(erased)  # another installation, another secret
    other.engine.dispose()


def test_erasures_made_before_the_installation_secret_hold_after_the_upgrade(store) -> None:
    events = store()
    events.append_events([Event("e1", "bob", "i1", "view")])
    back_to(events.engine, 2)
    legacy = hmac.new(b"tailored-audit", b"alice", hashlib.sha256).hexdigest()  # how revision 2 fingerprinted alice
    with events.engine.begin() as connection:
        connection.execute(schema.erasures.insert().values(subject=legacy, erased_at=1.0))
        connection.execute(schema.audit_log.insert().values(action="erase_user", subject=legacy, detail={}, at=1.0))
    upgraded = store()
    assert upgraded.version == head() and upgraded.is_erased("alice") and not upgraded.is_erased("bob")
    assert legacy not in upgraded.erased_subjects() and legacy not in str(upgraded.audit_entries())
    assert upgraded.append_events([Event("e2", "alice", "i1", "view")]) == (0, 1)


@pytest.mark.parametrize("pseudonym_key", [None, "the-key"])
def test_a_database_from_before_the_pseudonym_record_is_judged_by_the_ids_it_holds(store, pseudonym_key) -> None:
    made = store(pseudonym_key=pseudonym_key)
    made.append_events([Event("e1", "alice", "i1", "view")])
    back_to(made.engine, 2)  # as revision 2 left it: nothing recorded
    with pytest.raises(ConfigError, match="TAILORED_PSEUDONYM_KEY"):
        store(pseudonym_key="the-key" if pseudonym_key is None else None)
    assert store(pseudonym_key=pseudonym_key).count_events() == 1


def open_when_told(url: str, folder: str, name: str) -> str:
    """Say ready in ``folder``, wait for go, open the store (migrating it if need be); the fingerprint of one user."""
    (Path(folder) / f"ready-{name}").touch()
    while not (Path(folder) / "go").exists():
        time.sleep(0.001)
    store = EventStore(url)
    subject = store.subject("someone")
    store.engine.dispose()
    return subject


def test_processes_opening_a_new_database_at_once_migrate_it_once(database_url, tmp_path) -> None:
    names = ("first", "second", "third")
    code = ("import json, sys; from tests.store.test_migrations import open_when_told; "
            "print(json.dumps(open_when_told(*sys.argv[1:])))")
    processes = [subprocess.Popen([sys.executable, "-c", code, database_url, str(tmp_path), name], cwd=REPOSITORY,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for name in names]
    while not all((tmp_path / f"ready-{name}").exists() for name in names):
        assert all(process.poll() is None for process in processes), "a process died before the race"
        time.sleep(0.01)
    (tmp_path / "go").touch()
    results = [process.communicate(timeout=120) for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0], [error for _, error in results]
    assert len({json.loads(output) for output, _ in results}) == 1  # one installation secret: made once
    engine = engine_for(database_url)
    with engine.connect() as connection:
        assert connection.execute(sa.text("select version_num from alembic_version")).scalars().all() == [head()]
        secrets = sa.text("select count(*) from store_settings where name = 'audit_secret'")
        assert connection.execute(secrets).scalar() == 1
    engine.dispose()


def connect_at_barrier(url: str, barrier, errors) -> None:
    """Wait for the others, open a connection to ``url`` (pragmas included) and read; a failure goes to ``errors``."""
    engine = engine_for(url)
    barrier.wait()
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("select count(*) from sqlite_master")).scalar()
    except sa.exc.OperationalError as error:
        errors.put(str(error.orig))
    engine.dispose()


def test_sqlite_connections_racing_on_a_new_file_all_open_it(tmp_path) -> None:
    """SQLite fails ``PRAGMA journal_mode=WAL`` at once, not after its busy timeout, while another connection converts
    the same new file: 4 processes at a barrier did in 126 of 500 races before the engine retried it."""
    context = multiprocessing.get_context("fork")
    errors = context.Queue()
    for race in range(40):
        barrier = context.Barrier(4)
        url = f"sqlite:///{tmp_path / f'race-{race}.db'}"
        processes = [context.Process(target=connect_at_barrier, args=(url, barrier, errors)) for _ in range(4)]
        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=60)
        assert [process.exitcode for process in processes] == [0, 0, 0, 0]
    assert errors.empty(), errors.get()
