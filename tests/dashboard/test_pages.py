"""The dashboard over HTTP against `tailored serve` on a simulated month: who gets in (admin Bearer key, the
sign-in's session cookie; 303/401/403 otherwise; a forged, expired or revoked session is refused), the pages' JSON
against the month's truth, and each page's numbers against its JSON."""

from __future__ import annotations

import math
import re
from typing import Any

import httpx
import pytest

from tailored.dashboard.numbers import PAGES
from tailored.dashboard.pages import MISSING
from tailored.store import EventStore
from tests.dashboard.conftest import CATEGORIES, DAYS, SEGMENTS, Month


def resolve(document: Any, key: str) -> Any:
    for part in key.split("."):
        document = document[int(part)] if isinstance(document, list) else document[part]
    return document


def check_numbers(cells: list[dict[str, str]], expected: dict[str, Any]) -> None:
    """Each ``{key, text}`` shown equals the value at ``key`` in the page's JSON: texts exactly, numbers to the
    precision written (half a unit of the last digit shown), a dash for None."""
    assert cells, "the page shows no number"
    for cell in cells:
        truth, text = resolve(expected, cell["key"]), cell["text"]
        if truth is None:
            assert text == MISSING, cell
        elif isinstance(truth, str):
            assert text == truth, cell
        else:
            written = float(text.replace(",", ""))
            if "e" in text:
                assert math.isclose(written, truth, rel_tol=5e-3), cell
            else:
                decimals = len(text.split(".")[1]) if "." in text else 0
                assert abs(written - truth) <= 0.5 * 10 ** -decimals + 1e-12, (cell, truth)


def html_cells(html: str) -> list[dict[str, str]]:
    return [{"key": key, "text": text.strip()} for key, text in
            re.findall(r'data-key="([^"]+)"[^>]*>([^<]*)<', html)]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_without_an_admin_key_or_session_nobody_gets_in(server: str, month: Month) -> None:
    browser = httpx.get(f"{server}/dashboard/models", headers={"Accept": "text/html"})
    assert (browser.status_code, browser.headers["location"]) == (303, "/dashboard/sign-in")
    assert httpx.get(f"{server}/dashboard/api/overview").status_code == 401
    assert httpx.get(f"{server}/dashboard", headers=bearer("tlr_made_up")).status_code == 401
    refused = httpx.get(f"{server}/dashboard/api/alerts", headers=bearer(month.reader))
    assert refused.status_code == 403 and "admin" in refused.json()["detail"]
    assert httpx.get(f"{server}/dashboard", headers=bearer(month.admin)).status_code == 200
    assert "<form" in httpx.get(f"{server}/dashboard/sign-in").text


def test_the_sign_in_session_and_its_end(server: str, month: Month) -> None:
    store = EventStore(month.db)
    key = store.create_key(["admin"])
    for wrong, status in (("tlr_nope_nope", 401), (month.reader, 403)):
        answer = httpx.post(f"{server}/dashboard/sign-in", data={"key": wrong})
        assert answer.status_code == status and "tailored_session" not in answer.headers.get("set-cookie", "")
    signed = httpx.post(f"{server}/dashboard/sign-in", data={"key": key})
    assert (signed.status_code, signed.headers["location"]) == (303, "/dashboard")
    cookie = signed.headers["set-cookie"]
    assert {"HttpOnly", "Secure", "SameSite=strict", "Path=/dashboard"} <= {part.strip() for part in cookie.split(";")}
    session = cookie.split(";")[0].split("=", 1)[1]
    assert key.split("_")[2] not in session  # the key id only, never the secret

    def visit(value: str) -> httpx.Response:
        return httpx.get(f"{server}/dashboard/api/overview", headers={"Cookie": f"tailored_session={value}"})

    assert visit(session).status_code == 200
    key_id, expiry, signature = session.split(".")
    assert visit(f"{key_id}.{int(expiry) + 3600}.{signature}").status_code == 401  # extended: the signature fails
    assert visit(f"{month.admin.split('_')[1]}.{expiry}.{signature}").status_code == 401  # another key's id
    store.revoke_key(key_id)
    ended = visit(session)
    assert ended.status_code == 401 and "revoked" in ended.json()["detail"]
    assert 'tailored_session=""' in ended.headers["set-cookie"] or "Max-Age=0" in ended.headers["set-cookie"]
    store.engine.dispose()


def test_the_numbers_are_the_months(server: str, month: Month) -> None:
    def api(page: str) -> dict[str, Any]:
        answer = httpx.get(f"{server}/dashboard/api/{page}", headers=bearer(month.admin))
        assert answer.status_code == 200, answer.text
        return answer.json()

    overview = api("overview")
    assert len(overview["days"]) == DAYS
    assert overview["totals"]["impressions"] == month.impressions and overview["totals"]["lists"] == month.lists
    clicks = sum(month.clicks_by_arm.values())
    assert math.isclose(sum(day["click_rate"] * day["lists"] for day in overview["days"]), clicks)
    statuses = api("experiments")
    assert statuses["as_of"] is not None and statuses["error"] is None
    [experiment] = statuses["experiments"]
    arms = experiment["result"]["arms"]
    for arm, clicked in month.clicks_by_arm.items():
        assert math.isclose(arms[arm]["click_rate"]["value"] * arms[arm]["exposures"], clicked)
    assert sum(arm["exposures"] for arm in arms.values()) == month.lists
    assert experiment["result"]["lift"]["treatment"]["click_rate"]["value"] > 0
    models = api("models")
    assert [row["version"] for row in models["versions"]] == ["v0001", "v0002", "v0003"]
    assert models["stages"] == {"shop": {"production": ["v0001", "v0002"]}}  # v0003 promoted, then rolled back
    assert [(row["action"], row["previous"], row["version"]) for row in models["changes"]] == [
        ("rollback", "v0003", "v0002"), ("promote", "v0002", "v0003"), ("promote", "v0001", "v0002"),
        ("promote", None, "v0001")]  # newest first
    assert [row["fingerprint"] for row in models["trainings"]] == ["fp5", "fp20"]
    assert [(row["step"], row["detail"]["version"]) for row in models["loop"]] == [("rollback", "v0003"),
                                                                                  ("canary", "v0003")]
    groups = api("bias")["groups"]
    assert {(group["kind"], group["key"]) for group in groups} == (
        {("segment", key) for key in SEGMENTS} | {("category", key) for key in CATEGORIES})
    for kind in ("segment", "category"):
        shares = [sum(day["exposure_share"] for group in groups if group["kind"] == kind for day in group["days"]
                      if day["day"] == "2026-10-15")]
        assert math.isclose(shares[0], 1.0)
    assert [alert["rule"] for alert in api("alerts")["alerts"]] == ["click_rate_drop"]
    assert len(api("quality")["drift"]) == DAYS


@pytest.mark.parametrize("page", list(PAGES))
def test_each_pages_numbers_are_its_apis(server: str, month: Month, page: str) -> None:
    html = httpx.get(f"{server}/dashboard/{page}", headers=bearer(month.admin))
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in html.headers["content-security-policy"]  # the browser would fetch nothing
    assert not re.search(r"(src|href)=\"(https?:)?//", html.text)  # nothing to fetch from elsewhere
    check_numbers(html_cells(html.text), httpx.get(f"{server}/dashboard/api/{page}", headers=bearer(month.admin))
                  .json())


def test_bad_requests_name_what_is_wrong(server: str, month: Month) -> None:
    missing = httpx.get(f"{server}/dashboard/nope", headers=bearer(month.admin))
    assert missing.status_code == 404 and "overview" in missing.json()["detail"]
    since = httpx.get(f"{server}/dashboard/api/overview?since=yesterday", headers=bearer(month.admin))
    assert since.status_code == 400 and "since" in since.json()["detail"]
    later = httpx.get(f"{server}/dashboard/api/overview?since=2026-10-21", headers=bearer(month.admin)).json()
    assert [day["day"] for day in later["days"]][0] == "2026-10-21" and len(later["days"]) == 10
    page = httpx.get(f"{server}/dashboard/bias?since=2026-10-21", headers=bearer(month.admin)).text
    assert 'href="/dashboard/alerts?since=2026-10-21"' in page and 'value="2026-10-21"' in page
    assert "2026-10-20" not in page
