"""The issue's contract as an independent checker drives it: `tailored keys create`, `tailored serve` in its own
process, then HTTP."""

from __future__ import annotations

import httpx

from tests.serve.test_live_history import served
from tests.serve.test_service import counts, shop
from tests.cli.helpers import cli, ok


def test_keys_create_then_serve_then_recommend(tmp_path) -> None:
    frame, items = shop()
    frame.to_csv(tmp_path / "train.csv", index=False)
    items.to_csv(tmp_path / "items.csv", index=False)
    ok(cli("train", "--interactions", "train.csv", "--items", "items.csv", "--algorithm", "ease",
           "--model-dir", "model", cwd=tmp_path))
    key = ok(cli("keys", "create", "--scopes", "recommend,events:write,admin", cwd=tmp_path)).stdout.strip()
    assert key.startswith("tlr_") and (tmp_path / "tailored.db").exists()  # --db defaults to a SQLite file here
    with served(tmp_path) as base:
        headers = {"Authorization": f"Bearer {key}"}
        listed = httpx.get(f"{base}/v1/users/u3/recommendations", params={"k": 10}, headers=headers).json()
        assert len(listed["items"]) == 10 and listed["exposure_id"] and listed["model_version"].startswith("ease@")
        events = {"events": [{"event_id": "a1", "user_id": "u3", "item_id": "i1", "type": "click"}]}
        assert counts(httpx.post(f"{base}/v1/events", json=events, headers=headers)) == {"accepted": 1, "duplicates": 0}
        assert httpx.delete(f"{base}/v1/users/u3", headers=headers).status_code == 204
    exported = ok(cli("events", "export", "--output", "events.csv", cwd=tmp_path))
    assert "wrote 0 events" in exported.stderr  # u3's only event went with the erasure


def test_batch_streams_chunks_to_a_file_or_the_database(tmp_path) -> None:
    import pandas as pd
    import sqlalchemy as sa

    frame, items = shop()
    frame.to_csv(tmp_path / "train.csv", index=False)
    ok(cli("train", "--interactions", "train.csv", "--algorithm", "item-knn", "--model-dir", "model", cwd=tmp_path))
    ok(cli("batch", "--model-dir", "model", "--all-users", "--k", "5", "--chunk-users", "7", "--output", "crm.parquet",
           cwd=tmp_path))
    lists = pd.read_parquet(tmp_path / "crm.parquet")
    assert lists["user_id"].nunique() == frame["user_id"].nunique() and len(lists) == 5 * lists["user_id"].nunique()
    assert list(lists.columns) == ["user_id", "item_id", "score", "rank", "model"]
    assert set(lists["model"]) == {"item-knn"}
    ok(cli("batch", "--model-dir", "model", "--all-users", "--k", "3", "--chunk-users", "10", "--output", "crm.csv",
           cwd=tmp_path))
    assert len(pd.read_csv(tmp_path / "crm.csv")) == 3 * lists["user_id"].nunique()
    ok(cli("batch", "--model-dir", "model", "--all-users", "--k", "2", "--db", "sqlite:///crm.db", cwd=tmp_path))
    with sa.create_engine(f"sqlite:///{tmp_path / 'crm.db'}").connect() as connection:
        stored = connection.execute(sa.text("select count(*) from batch_recommendations")).scalar()
        assert stored == 2 * lists["user_id"].nunique()
    bad = cli("batch", "--model-dir", "model", "--all-users", "--output", "crm.xlsx", cwd=tmp_path)
    assert bad.returncode == 2 and "use a .csv or .parquet file name" in bad.stderr
    assert not (tmp_path / "crm.xlsx").exists()


def test_batch_leaves_out_users_erased_after_training_in_a_file_as_in_the_database(tmp_path) -> None:
    import pandas as pd
    import sqlalchemy as sa

    frame, _ = shop()
    frame.to_csv(tmp_path / "train.csv", index=False)
    ok(cli("train", "--interactions", "train.csv", "--algorithm", "item-knn", "--model-dir", "model", cwd=tmp_path))
    ok(cli("keys", "create", "--scopes", "admin", "--db", "sqlite:///shop.db", cwd=tmp_path))  # the database exists
    erased = sorted(frame["user_id"].astype(str).unique())[:2]
    for user in erased:
        ok(cli("erase-user", user, "--db", "sqlite:///shop.db", cwd=tmp_path))
    ok(cli("batch", "--model-dir", "model", "--all-users", "--k", "3", "--output", "crm.csv",
           "--erasures-from", "sqlite:///shop.db", cwd=tmp_path))
    written = set(pd.read_csv(tmp_path / "crm.csv")["user_id"].astype(str))
    assert written and not written & set(erased) and len(written) == frame["user_id"].nunique() - len(erased)
    ok(cli("batch", "--model-dir", "model", "--all-users", "--k", "3", "--db", "sqlite:///shop.db", cwd=tmp_path))
    with sa.create_engine(f"sqlite:///{tmp_path / 'shop.db'}").connect() as connection:
        stored = connection.execute(sa.text("select count(distinct user_id) from batch_recommendations")).scalar()
    assert stored == len(written)
    missing = cli("batch", "--model-dir", "model", "--all-users", "--output", "x.csv", "--erasures-from",
                  "sqlite:///typo.db", cwd=tmp_path)
    assert missing.returncode == 2 and not (tmp_path / "typo.db").exists() and not (tmp_path / "x.csv").exists()


def test_events_export_holds_out_items_not_in_the_catalogue_until_they_exist(tmp_path) -> None:
    import pandas as pd

    from tailored.store import EventStore
    from tailored.store.database import Event

    store = EventStore(f"sqlite:///{tmp_path / 'tailored.db'}")
    store.append_events([Event("e1", "u1", "i1", "view"), Event("e2", "u1", "i-later", "view")])
    everything = ok(cli("events", "export", "--output", "all.csv", cwd=tmp_path))
    assert "wrote 2 events" in everything.stderr and "every event written" in everything.stderr  # no catalogue yet
    store.put_item("i1", {"category": "c1"})
    known = ok(cli("events", "export", "--output", "known.csv", cwd=tmp_path))
    assert "wrote 1 events" in known.stderr and "held out 1 event(s)" in known.stderr
    assert pd.read_csv(tmp_path / "known.csv")["item_id"].tolist() == ["i1"]
    pd.DataFrame({"item_id": ["i-later"]}).to_csv(tmp_path / "catalogue.csv", index=False)
    exported = ok(cli("events", "export", "--output", "x.csv", "--items", "catalogue.csv", cwd=tmp_path))
    assert "wrote 2 events" in exported.stderr
    store.engine.dispose()


def test_benchmark_durability_kills_the_server_and_loses_nothing(tmp_path) -> None:
    frame, _ = shop()
    frame.to_csv(tmp_path / "train.csv", index=False)
    ok(cli("train", "--interactions", "train.csv", "--algorithm", "popularity", "--model-dir", "model", cwd=tmp_path))
    report = ok(cli("benchmark", "durability", "--model-dir", "model", "--trials", "2", cwd=tmp_path)).stdout
    figures = {line.split()[0]: int(line.split()[1].replace(",", "")) for line in report.splitlines() if line.strip()}
    assert figures["trials"] == 2 and 0 < figures["events_acknowledged"] <= figures["rows_stored"]
    assert figures["acknowledged_but_lost"] == 0 and figures["stored_twice"] == 0


def test_benchmark_service_prints_every_phase(tmp_path) -> None:
    frame, _ = shop()
    frame.to_csv(tmp_path / "train.csv", index=False)
    ok(cli("train", "--interactions", "train.csv", "--algorithm", "als", "--model-dir", "model", cwd=tmp_path))
    report = ok(cli("benchmark", "service", "--model-dir", "model", "--events", "2000", "--rate", "40", "--seconds",
                    "2", "--event-rate", "40", "--phase-seconds", "2", cwd=tmp_path)).stdout
    figures = dict(line.split(maxsplit=1) for line in report.splitlines() if line.strip())
    number = {key: value.replace(",", "") for key, value in figures.items()}  # 1,234.5 ms
    assert figures["events_committed"] == "2,000" and figures["events_accepted"] == "2,000"
    for phase in ("single_event", "one_connection", "load"):
        assert figures[f"{phase}_errors"] == "0" and float(number[f"{phase}_p99_ms"]) > 0, (phase, figures)
    assert float(number["load_per_second"]) > 30 and float(number["rss_spread_percent"]) >= 0
    assert figures["overload_retry_after_missing"] == "0" and figures["ann"] == "none: exact scoring"


def test_the_api_reference_in_docs_is_the_services_openapi_document(tmp_path) -> None:
    from pathlib import Path

    ok(cli("openapi", "--output", "openapi.json", cwd=tmp_path))
    documented = Path(__file__).resolve().parents[2] / "docs" / "api" / "openapi.json"
    assert (tmp_path / "openapi.json").read_text() == documented.read_text(), \
        "docs/api/openapi.json is stale: regenerate it with `tailored openapi --output docs/api/openapi.json`"


def test_serve_refuses_a_missing_model_before_starting(tmp_path) -> None:
    missing = cli("serve", "--model-dir", "nowhere", cwd=tmp_path)
    assert missing.returncode == 2 and "nowhere" in missing.stderr and "Traceback" not in missing.stderr
