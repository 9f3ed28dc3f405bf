"""``GET /v1/users/{user_id}/recommendations`` and ``POST /v1/recommendations`` (a session and rules in the body)."""

from __future__ import annotations

from typing import Any

import pandas as pd
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from tailored.config import build_dataclass
from tailored.data.columns import ITEM_ID, RANK, REASONS, SCORE
from tailored.rank.context import parse_context
from tailored.rank.rules import BusinessRules
from tailored.serve.security import ERRORS, require
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


@router.get("/users/{user_id}/recommendations")
def user_recommendations(request: Request, user_id: Identifier, k: int = Query(10, ge=1), explain: bool = False,
                         _: str = Depends(require("recommend"))) -> dict[str, Any]:
    """Top-k for a user in context: every other query parameter is a context key (date, lat, lon, device...)."""
    pairs = [f"{key}={value}" for key, value in request.query_params.items() if key not in NOT_CONTEXT]
    return respond(request, user_id, k, pairs, explain)


@router.post("/recommendations")
def recommendations(request: Request, body: RecommendationRequest, _: str = Depends(require("recommend"))) -> dict[str, Any]:
    """Top-k for a user or an anonymous session (its recent items), with request-time business rules."""
    pairs = [f"{key}={value}" for key, value in body.context.items()]
    if body.recent:
        pairs.append("recent=" + "|".join(body.recent))
    stages = [build_dataclass(BusinessRules, body.rules, "rules")] if body.rules else []
    return respond(request, body.user_id or "\x00session", body.k, pairs, body.explain, stages)


def respond(request: Request, user_id: str, k: int, pairs: list[str], explain: bool,
            stages: list[Any] | None = None) -> dict[str, Any]:
    service = request.app.state.service
    k = min(k, service.settings.max_k)
    hits, fallbacks = service.cache_hits, service.fallbacks
    frame = service.recommend(user_id, k, parse_context(pairs), explain, stages or [])
    request.app.state.metrics.cache_hits.inc(service.cache_hits - hits)
    request.app.state.metrics.fallbacks.inc(service.fallbacks - fallbacks)
    exposure_id = service.exposures.log(user_id, service.model_version, frame[ITEM_ID].tolist())
    return {"user_id": None if user_id == "\x00session" else user_id, "items": listed(frame),
            "model_version": service.model_version, "exposure_id": exposure_id}


def listed(frame: pd.DataFrame) -> list[dict[str, Any]]:
    columns = [ITEM_ID, SCORE, RANK] + ([REASONS] if REASONS in frame else [])
    rows = frame[columns].astype({ITEM_ID: str, SCORE: float, RANK: int}).to_dict("records")
    return [{key: value for key, value in row.items() if not (key == REASONS and value == "")} for row in rows]
