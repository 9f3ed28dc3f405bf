"""The store's admin commands as an operator runs them (real `tailored` subprocesses on a SQLite file): a mistyped
--db, a missing or wrong pseudonym key, and what `tailored events export` writes."""

from __future__ import annotations

import subprocess

from tailored.store import EventStore
from tailored.store.database import Event
from tests.cli.helpers import ENV, POOL, TAILORED, flat, ok


def tailored(*args: object, cwd, key: str | None = None) -> subprocess.CompletedProcess[str]:
    """`tailored ARGS...` in ``cwd``, with TAILORED_PSEUDONYM_KEY set to ``key`` (unset when None)."""
    env = {name: value for name, value in ENV.items() if name != "TAILORED_PSEUDONYM_KEY"}
    env |= {} if key is None else {"TAILORED_PSEUDONYM_KEY": key}
    return subprocess.run([TAILORED, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=180,
                          check=False)


def test_admin_commands_refuse_a_sqlite_file_that_does_not_exist(tmp_path) -> None:
    commands = {"erase-user": ["erase-user", "alice"], "events export": ["events", "export", "--output", "out.csv"],
                "events prune": ["events", "prune", "--days", "30"], "keys list": ["keys", "list"],
                "keys revoke": ["keys", "revoke", "0123"]}
    runs = {name: POOL.submit(tailored, *args, "--db", "sqlite:///typo.db", cwd=tmp_path)
            for name, args in commands.items()}
    created = tailored("keys", "create", "--scopes", "admin", "--db", "sqlite:///new.db", cwd=tmp_path)
    for name, run in runs.items():
        result = run.result()
        assert result.returncode == 2, (name, result.stderr)
        assert "No database at 'typo.db'" in flat(result.stderr) and "Traceback" not in result.stderr, name
    assert not (tmp_path / "typo.db").exists()
    assert created.returncode == 0 and (tmp_path / "new.db").is_file()  # keys create makes a new database


def test_a_pseudonymised_database_refuses_a_missing_or_wrong_key(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    store = EventStore(url, pseudonym_key="the-key")
    store.append_events([Event("e1", "alice", "i1", "view")])
    missing = POOL.submit(tailored, "erase-user", "alice", "--db", url, cwd=tmp_path)
    wrong = POOL.submit(tailored, "erase-user", "alice", "--db", url, cwd=tmp_path, key="another-key")
    clear = EventStore(f"sqlite:///{tmp_path / 'clear.db'}")
    keyed = tailored("events", "export", "--output", "out.csv", "--db", "sqlite:///clear.db", cwd=tmp_path,
                     key="the-key")
    assert missing.result().returncode == 2
    assert "stores pseudonymised user ids: set TAILORED_PSEUDONYM_KEY" in flat(missing.result().stderr)
    assert wrong.result().returncode == 2
    assert "TAILORED_PSEUDONYM_KEY is not the key the database" in flat(wrong.result().stderr)
    assert keyed.returncode == 2 and "stores user ids in clear, but TAILORED_PSEUDONYM_KEY is set" in flat(keyed.stderr)
    assert store.count_events() == 1 and store.audit_entries() == []  # nothing deleted, no erasure audited
    erased = tailored("erase-user", "alice", "--db", url, cwd=tmp_path, key="the-key")
    assert erased.returncode == 0 and "1 events" in erased.stderr and store.is_erased("alice")
    store.engine.dispose()
    clear.engine.dispose()


def test_events_export_writes_what_identifies_each_event_and_nothing_of_erased_users(tmp_path) -> None:
    import pandas as pd

    store = EventStore(f"sqlite:///{tmp_path / 'tailored.db'}")
    store.append_events([Event("e1", "alice", "i1", "view", timestamp=1_700_000_000),
                         Event("e2", "bob", "i2", "purchase", 2.0),
                         Event("e3", "carol", "i1", "click", timestamp=1_700_000_100),
                         Event("e4", "bob", "i1", "view")])
    store.erase_user("carol")
    ok(tailored("events", "export", "--output", "events.csv", cwd=tmp_path))
    exported = pd.read_csv(tmp_path / "events.csv")
    assert list(exported.columns) == ["user_id", "item_id", "value", "timestamp", "event_type", "event_id",
                                      "received_at"]
    assert exported["event_id"].tolist() == ["e1", "e2", "e4"] and "carol" not in exported["user_id"].tolist()
    assert exported["received_at"].between(1_700_000_000, 4_000_000_000).all()
    assert exported.loc[0, "timestamp"] == 1_700_000_000 and exported.loc[1, "value"] == 2.0
    trained = ok(tailored("train", "--interactions", "events.csv", "--algorithm", "popularity", "--model-dir", "model",
                          cwd=tmp_path))
    assert "Traceback" not in trained.stderr and (tmp_path / "model").is_dir()  # training reads the canonical columns
    store.engine.dispose()
