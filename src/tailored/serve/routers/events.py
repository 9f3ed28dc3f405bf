"""``POST /v1/events``: a batch of feedback events, idempotent on ``event_id``, acknowledged once committed."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel, Field

from tailored.serve.security import require
from tailored.store.database import Event

router = APIRouter(prefix="/v1", tags=["events"])
EventType = Literal["view", "click", "cart", "purchase", "rating"]


class EventIn(BaseModel):
    event_id: str = Field(min_length=1, max_length=200)
    user_id: str = Field(min_length=1, max_length=200)
    item_id: str = Field(min_length=1, max_length=200)
    type: EventType
    value: float | None = None
    timestamp: float | None = Field(None, description="Unix seconds; default: when received.")


class EventBatch(BaseModel):
    events: list[EventIn] = Field(min_length=1)


@router.post("/events")
def post_events(request: Request, batch: EventBatch, _: str = Depends(require("events:write"))) -> dict[str, Any]:
    service = request.app.state.service
    limit = service.settings.max_events_per_request
    if len(batch.events) > limit:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE,
                            f"{len(batch.events)} events in one request; at most {limit}: split the batch.")
    accepted, duplicates = service.store.append_events([Event(**event.model_dump()) for event in batch.events])
    request.app.state.metrics.events.inc(accepted)
    service.events_arrived({event.user_id for event in batch.events})
    return {"accepted": accepted, "duplicates": duplicates}
