"""``POST /v1/events``: a batch of feedback events, idempotent on ``event_id``, acknowledged once committed."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel, Field

from tailored.serve.security import ERRORS, require
from tailored.serve.validation import EventIn
from tailored.store.database import Event

router = APIRouter(prefix="/v1", tags=["events"], responses=ERRORS)


class EventBatch(BaseModel):
    events: list[EventIn] = Field(min_length=1)


class Attribution(BaseModel):
    event_id: str
    exposure_id: str | None = Field(description="The list the event is credited to (None: not credited).")
    by: Literal["exposure_id", "window", "none", "duplicate"] = Field(
        description="exposure_id: the list the event named; window: the user's latest list showing the item within "
                    "the attribution window; none: no such list, or not a click, cart or purchase; duplicate: the "
                    "list's slot was already credited for this event type.")


class EventsStored(BaseModel):
    accepted: int = Field(description="Events stored by this request.")
    duplicates: int = Field(description="Events already stored (same event_id and payload), or of erased users.")
    attribution: list[Attribution] = Field(description="How each event of the batch was attributed, in order.")


async def within_event_limit(request: Request) -> None:
    """413 for a batch over ``max_events_per_request``, before its events are validated one by one (FastAPI parses
    the JSON body before the dependencies run, and validates it after them)."""
    try:
        body = await request.json()
    except ValueError:
        return  # not JSON: the body's validation answers 422
    events = body.get("events") if isinstance(body, dict) else None
    limit = request.app.state.service.settings.max_events_per_request
    if isinstance(events, list) and len(events) > limit:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE,
                            f"{len(events)} events in one request; at most {limit}: split the batch.")


@router.post("/events", responses={409: {"description": "An event_id already stored with a different payload."}})
async def post_events(request: Request, batch: EventBatch, _: str = Depends(require("events:write")),
                      __: None = Depends(within_event_limit)) -> EventsStored:
    """Store the batch in the next group commit; answered after it is durable. The same event sent again is stored
    once (a duplicate); the same id with a different payload is refused (409) and nothing of the batch is stored.
    Events of items the model does not know yet are stored and held out of training until the item exists. Once
    committed (with the lists they answer: the waiting impressions are written first), clicks, carts and purchases
    are attributed to the list they answer, and the policy learns from them before the answer."""
    service = request.app.state.service
    events = [Event(event.event_id, event.user_id, event.item_id, event.type, event.value, event.timestamp,
                    event.exposure_id) for event in batch.events]
    committed = await service.committer.commit(events)
    request.app.state.metrics.events.inc(committed.accepted)
    service.events_arrived({event.user_id for event in batch.events})
    return EventsStored(accepted=committed.accepted, duplicates=committed.duplicates,
                        attribution=[Attribution(**each) for each in committed.attribution or []])
