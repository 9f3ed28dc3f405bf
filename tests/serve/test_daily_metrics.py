"""/metrics exports the latest stored day's production figures and alerts (`tailored monitor daily`) for a Prometheus
scraper, over real HTTP."""

from __future__ import annotations

import httpx
import pandas as pd

from tailored.serve import ServiceSettings, create_app
from tailored.store import EventStore
from tailored.store.monitoring import add_alert, write_daily
from tests.serve.test_service import auth, serving


def test_the_latest_days_figures_and_alerts_are_exported(model_dir, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    store = EventStore(url)
    key = store.create_key(["admin"])
    today = pd.Timestamp.now("UTC")
    days = [(today - pd.Timedelta(days=offset)).strftime("%Y-%m-%d") for offset in (2, 1)]
    write_daily(store, days, pd.DataFrame({
        "day": [days[0], days[1], days[1], days[1]], "metric": ["click_rate"] * 3 + ["exposure_share"],
        "kind": ["all", "all", "segment", "category"], "key": ["all", "all", "gold", "shoes"],
        "value": [0.5, 0.25, 0.125, 0.0]}))
    add_alert(store, days[1], "shoes hidden", "critical", "category shoes: exposure share 0", 0.0)
    add_alert(store, days[0], "older", "warning", "yesterday's", 1.0)
    with serving(create_app(ServiceSettings(db_url=url, model_dir=model_dir))) as base:
        text = httpx.get(f"{base}/metrics", headers=auth(key)).text
    assert 'tailored_daily{key="all",kind="all",metric="click_rate"} 0.25' in text  # the latest day only
    assert 'tailored_daily{key="gold",kind="segment",metric="click_rate"} 0.125' in text
    assert 'tailored_daily{key="shoes",kind="category",metric="exposure_share"} 0.0' in text
    assert "tailored_daily_age_days 1.0" in text
    assert 'tailored_alerts{severity="critical"} 1.0' in text and 'tailored_alerts{severity="warning"} 0.0' in text
