"""``GET /v1/users/{user_id}/recommendations`` and ``POST /v1/recommendations`` (a session and rules in the body).
Each builds one typed `tailored.query.Query`; a bad context value is a 400 that names the query parameter or the
body field it came from."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi import Query as Parameter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from tailored.config import build_dataclass
from tailored.query import Query, context_from, parameter
from tailored.rank.rules import BusinessRules
from tailored.serve.security import ERRORS, require
from tailored.serve.service import SESSION, new_exposure_id
from tailored.serve.validation import Identifier

router = APIRouter(prefix="/v1", tags=["recommendations"], responses=ERRORS)
NOT_CONTEXT = {"k", "explain"}


class RecommendationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: Identifier | None = Field(None, description="Known or new user; omit for an anonymous session.")
    recent: list[Identifier] = Field(default_factory=list, max_length=1_000,
                                     description="Items just viewed or bought, oldest first.")
    context: dict[str, str] = Field(default_factory=dict, description="date, lat, lon, radius_km, device, ...")
    rules: dict[str, Any] = Field(default_factory=dict, description="Business rules (fields of the rules stage).")
    k: int = Field(10, ge=1)
    explain: bool = False


class RecommendedItem(BaseModel):
    item_id: str
    score: float | None
    rank: int
    propensity: float = Field(description="The probability that the serving policy put this item at this rank, "
                                          "given its candidates (1 for greedy): log it with the feedback.")
    reasons: str | None = Field(None, description="Why the item is there (with explain=true).")


class ExperimentArm(BaseModel):
    name: str
    arm: str


class Recommendations(BaseModel):
    user_id: str | None
    items: list[RecommendedItem]
    model_version: str
    exposure_id: str = Field(description="The impression's id: send it back with the events it led to.")
    policy: str = Field(description="The spec of the policy that chose the list (--policy), e.g. thompson.")
    experiment: ExperimentArm | None = Field(None, description="The experiment and arm the user is in (absent: "
                                                               "none); `tailored experiments create` starts one.")


def body_field(key: str) -> str:
    """How an error names a context key of the POST body."""
    return f"body field 'context.{key}'"


@router.get("/users/{user_id}/recommendations", response_model=Recommendations)
async def user_recommendations(request: Request, user_id: Identifier, k: int = Parameter(10, ge=1),
                               explain: bool = False, _: str = Depends(require("recommend"))) -> JSONResponse:
    """Top-k for a user in context: every other query parameter is a context key (date, lat, lon, device...)."""
    values = {key: value for key, value in request.query_params.items() if key not in NOT_CONTEXT}
    query = Query(user_id, context_from(values, parameter))
    return await respond(request, query, k, explain, plain=not (values or explain), context=values)


@router.post("/recommendations", response_model=Recommendations)
async def recommendations(request: Request, body: RecommendationRequest,
                          _: str = Depends(require("recommend"))) -> JSONResponse:
    """Top-k for a user or an anonymous session (its recent items), with request-time business rules."""
    query = Query(body.user_id, context_from(body.context, body_field, recent=body.recent))
    stages = [build_dataclass(BusinessRules, body.rules, "rules")] if body.rules else []
    plain = not (body.context or body.recent or body.explain or stages)
    return await respond(request, query, body.k, body.explain, plain, stages, body.context)


async def respond(request: Request, query: Query, k: int, explain: bool, plain: bool,
                  stages: list[Any] | None = None, context: dict[str, str] | None = None) -> JSONResponse:
    """A ``plain`` request (nothing asked but the user's list) of a trained user is answered on the event loop from
    the vector index (a fraction of a millisecond); everything else goes through the full pipeline in the thread pool
    (a trained user with events since training and nothing else asked: the index, with their folded-in factors, in
    the thread pool). The exposure id is drawn first: the policy's random stream for this list comes from it; the
    list is logged with its propensities and ``context`` (the request's context values), and learned at once. A user
    in an experiment is served by their arm (`Service.assigned`); the answer and the log name it."""
    started = time.perf_counter()
    service = request.app.state.service
    k = min(k, service.settings.max_k)
    user_id = SESSION if query.user_id is None else query.user_id
    exposure_id = new_exposure_id()
    assigned = service.assigned(query.user_id)
    quick = plain and (assigned is None or (assigned.model is None and assigned.personalised))
    rows = service.quick_recommend(user_id, k, exposure_id) if quick else None
    if rows is None:
        rows = await run_in_threadpool(service.recommend, query, k, explain, stages or [], plain, exposure_id,
                                       assigned)
    service.expose(exposure_id, user_id, rows, context, assigned, (time.perf_counter() - started) * 1000)
    answer = {"user_id": query.user_id, "items": rows, "model_version": service.model_version,
              "exposure_id": exposure_id, "policy": service.policy.spec}
    if assigned is not None:
        answer["experiment"] = assigned.answer()
        answer["model_version"] = assigned.ref if assigned.model is not None else service.model_version
    return JSONResponse(answer)
