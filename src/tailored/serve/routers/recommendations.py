"""``GET /v1/users/{user_id}/recommendations`` and ``POST /v1/recommendations`` (a session and rules in the body)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from tailored.config import build_dataclass
from tailored.query import parse_context
from tailored.rank.rules import BusinessRules
from tailored.serve.security import ERRORS, require
from tailored.serve.service import SESSION
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
    reasons: str | None = Field(None, description="Why the item is there (with explain=true).")


class Recommendations(BaseModel):
    user_id: str | None
    items: list[RecommendedItem]
    model_version: str
    exposure_id: str = Field(description="The impression's id: send it back with the events it led to.")


@router.get("/users/{user_id}/recommendations", response_model=Recommendations)
async def user_recommendations(request: Request, user_id: Identifier, k: int = Query(10, ge=1), explain: bool = False,
                               _: str = Depends(require("recommend"))) -> JSONResponse:
    """Top-k for a user in context: every other query parameter is a context key (date, lat, lon, device...)."""
    pairs = [f"{key}={value}" for key, value in request.query_params.items() if key not in NOT_CONTEXT]
    return await respond(request, user_id, k, pairs, explain)


@router.post("/recommendations", response_model=Recommendations)
async def recommendations(request: Request, body: RecommendationRequest,
                          _: str = Depends(require("recommend"))) -> JSONResponse:
    """Top-k for a user or an anonymous session (its recent items), with request-time business rules."""
    pairs = [f"{key}={value}" for key, value in body.context.items()]
    if body.recent:
        pairs.append("recent=" + "|".join(body.recent))
    stages = [build_dataclass(BusinessRules, body.rules, "rules")] if body.rules else []
    return await respond(request, body.user_id or SESSION, body.k, pairs, body.explain, stages)


async def respond(request: Request, user_id: str, k: int, pairs: list[str], explain: bool,
                  stages: list[Any] | None = None) -> JSONResponse:
    """A trained user with nothing else asked is answered on the event loop from the vector index (a fraction of a
    millisecond); everything else goes through the full pipeline in the thread pool (a trained user with events since
    training and nothing else asked: the index, with their folded-in factors, in the thread pool)."""
    service = request.app.state.service
    k = min(k, service.settings.max_k)
    plain = not (pairs or explain or stages)
    rows = service.quick_recommend(user_id, k) if plain else None
    if rows is None:
        rows = await run_in_threadpool(service.recommend, user_id, k, parse_context(pairs), explain, stages or [], plain)
    exposure_id = service.exposures.log(user_id, service.model_version, [row["item_id"] for row in rows])
    return JSONResponse({"user_id": None if user_id == SESSION else user_id, "items": rows,
                         "model_version": service.model_version, "exposure_id": exposure_id})
