"""``/dashboard``: the monitoring pages (`tailored.dashboard`), for the admin scope only. Scripts send
``Authorization: Bearer <key>``; people sign in at ``/dashboard/sign-in`` with an admin key, which sets the session
cookie ``tailored_session`` (signed key id and expiry: Secure, HttpOnly, SameSite=Strict). Without a valid key or
session a browser (``Accept: text/html``) is sent to the sign-in page (303), a script gets 401; a key without the
admin scope gets 403. ``/dashboard/api/PAGE`` answers each page's numbers as JSON. Not in the OpenAPI document: the
pages are for people, their JSON for the dashboard's tests and scripts."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from tailored.dashboard.numbers import PAGES, Sources, numbers, since_timestamp
from tailored.dashboard.pages import shell, sign_in
from tailored.dashboard.refresh import EXPERIMENTS_REFRESH_SECONDS, Refreshing
from tailored.dashboard.session import ADMIN, COOKIE, SESSION_SECONDS, key_id_scopes, session_key, sign, signed_key_id
from tailored.serve.security import KeyCheckUnavailable, bearer_key, refusal
from tailored.serve.service import Service

router = APIRouter(prefix="/dashboard", include_in_schema=False)
SIGN_IN = "/dashboard/sign-in"
NO_STORE = {"Cache-Control": "no-store"}
PAGE_HEADERS = NO_STORE | {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
"""The pages load nothing (the browser refuses any fetch, script or frame), and no other site may frame them."""
MAX_FORM_BYTES = 4096
FIRST_WAIT_SECONDS = 1.5
"""How long a page waits for the first computation before it says the status is being computed."""


def _service(request: Request) -> Service:
    return request.app.state.service


async def _key(request: Request) -> bytes:
    """The session signing key, read from the store once per app."""
    found = getattr(request.app.state, "dashboard_session_key", None)
    if found is None:
        service = _service(request)
        found = request.app.state.dashboard_session_key = await service.database_calls(session_key, service.store)
    return found


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


async def _refused(request: Request) -> Response | None:
    """None when the request holds an admin key (Bearer) or an admin session; else its answer: 303 to the sign-in
    page for a browser without a session, 401 otherwise, 403 for a key without the admin scope, 429 past the key's
    rate, 503 when the database cannot tell."""
    service = _service(request)
    key = bearer_key(request.scope["headers"])
    try:
        if key is not None:
            scopes = await service.keys.scopes(key)
            key_id = key.split("_")[1] if scopes is not None else None
            problem = "Invalid or revoked API key."
        else:
            key_id = signed_key_id(await _key(request), request.cookies.get(COOKIE))
            scopes = await service.database_calls(key_id_scopes, service.store, key_id) if key_id else None
            problem = ("Your session ended: its key was revoked." if key_id else
                       "Sign in at /dashboard/sign-in, or send 'Authorization: Bearer <key>' with an admin key.")
    except (KeyCheckUnavailable, TimeoutError):
        return refusal(503, "The database is unavailable: the key cannot be checked; retry shortly.",
                       **{"Retry-After": "1"})
    if scopes is None:
        if key is None and _wants_html(request):
            answer: Response = RedirectResponse(SIGN_IN, status_code=303)
        else:
            answer = refusal(401, problem, **{"WWW-Authenticate": "Bearer"})
        if request.cookies.get(COOKIE):
            answer.delete_cookie(COOKIE, path="/dashboard", secure=True, httponly=True, samesite="strict")
        return answer
    if ADMIN not in scopes:
        return refusal(403, "This key lacks the 'admin' scope the dashboard needs.")
    wait = service.limiter.retry_after(key_id) if key_id else None
    if wait is not None:
        return refusal(429, "Rate limit exceeded for this key; retry later.", **{"Retry-After": str(wait)})
    return None


def _experiments(request: Request) -> Refreshing[dict[str, Any]]:
    """The experiments page's numbers, kept by the app and recomputed in the background (`Refreshing`)."""
    found = getattr(request.app.state, "dashboard_experiments", None)
    if found is None:
        store = _service(request).store
        found = request.app.state.dashboard_experiments = Refreshing(
            lambda: numbers("experiments", Sources(store)), EXPERIMENTS_REFRESH_SECONDS)
    return found


async def _numbers(request: Request, page: str) -> dict[str, Any]:
    """The page's numbers; the experiments' with ``as_of`` (when computed; None while the first computation runs)
    and ``error`` (why the last computation failed, None when it did not)."""
    if page == "experiments":
        refreshing = _experiments(request)
        found, at = await run_in_threadpool(refreshing.get, FIRST_WAIT_SECONDS)
        return (found or {"experiments": []}) | {"as_of": at, "error": refreshing.error}
    service = _service(request)
    sources = Sources(service.store, service.registry, since_timestamp(request.query_params.get("since")))
    return await run_in_threadpool(numbers, page, sources)


@router.get("/sign-in")
async def sign_in_page() -> HTMLResponse:
    return HTMLResponse(sign_in(), headers=PAGE_HEADERS)


@router.post("/sign-in")
async def sign_in_post(request: Request) -> Response:
    """A form with ``key``: an admin key gets a session cookie and a 303 to the overview; another key 403, an
    invalid one 401, both with the form again."""
    body = await request.body()
    key = parse_qs(body[:MAX_FORM_BYTES].decode("latin-1")).get("key", [""])[0].strip()
    service = _service(request)
    try:
        scopes = await service.keys.scopes(key) if key else None
    except KeyCheckUnavailable:
        return HTMLResponse(sign_in("The database is unavailable: retry shortly."), status_code=503,
                            headers={"Retry-After": "1", **PAGE_HEADERS})
    if scopes is None:
        return HTMLResponse(sign_in("Invalid or revoked API key."), status_code=401, headers=PAGE_HEADERS)
    if ADMIN not in scopes:
        return HTMLResponse(sign_in("This key lacks the 'admin' scope the dashboard needs."), status_code=403,
                            headers=PAGE_HEADERS)
    answer = RedirectResponse("/dashboard", status_code=303)
    answer.set_cookie(COOKIE, sign(await _key(request), key.split("_")[1]), max_age=SESSION_SECONDS,
                      path="/dashboard", secure=True, httponly=True, samesite="strict")
    return answer


@router.post("/sign-out")
async def sign_out() -> Response:
    answer = RedirectResponse(SIGN_IN, status_code=303)
    answer.delete_cookie(COOKIE, path="/dashboard", secure=True, httponly=True, samesite="strict")
    return answer


@router.get("/api/{page}")
async def page_numbers(request: Request, page: str) -> Response:
    """The numbers of ``page`` as JSON (``?since=YYYY-MM-DD`` keeps the days from then on)."""
    refused = await _refused(request)
    if refused is not None:
        return refused
    if page not in PAGES:
        return refusal(404, f"No dashboard page {page!r}; pages: {', '.join(PAGES)}.")
    return JSONResponse(await _numbers(request, page), headers=NO_STORE)


@router.get("")
@router.get("/{page}")
async def page_html(request: Request, page: str = "overview") -> Response:
    """A page (the overview at /dashboard); a bad ``since`` is a 400 naming it (the app's TailoredError handler)."""
    refused = await _refused(request)
    if refused is not None:
        return refused
    if page not in PAGES:
        return refusal(404, f"No dashboard page {page!r}; pages: {', '.join(PAGES)}.")
    found = await _numbers(request, page)
    return HTMLResponse(shell(page, found, request.query_params.get("since") or None), headers=PAGE_HEADERS)
