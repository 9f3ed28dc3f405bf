"""The ``PUT`` of a user's or an item's attributes, one handler for both routes: the attributes are stored, and the
answer is 204, or 200 with one sentence per problem when the served model cannot use all of them."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel


class AttributeWarnings(BaseModel):
    user_id: str
    warnings: list[str]


class ItemAttributeWarnings(BaseModel):
    item_id: str
    warnings: list[str]


def warnings_answer(kind: Literal["user", "item"], problems: str) -> dict[int | str, dict[str, Any]]:
    """The 200 answer of the ``kind``'s PUT route, for the OpenAPI schema; ``problems``: what they may be."""
    return {200: {"model": AttributeWarnings if kind == "user" else ItemAttributeWarnings,
                  "description": f"Stored, but the served model cannot use all of it: one sentence per problem "
                                 f"{problems}."}}


def put_attributes(request: Request, kind: Literal["user", "item"], entity_id: str,
                   attributes: dict[str, Any]) -> Response:
    """Store the attributes of the user or item ``entity_id``; 204, or 200 with the warnings when the served model
    cannot use all of them (`Service.put_user`, `Service.put_item`)."""
    service = request.app.state.service
    warnings = (service.put_user if kind == "user" else service.put_item)(entity_id, attributes)
    if warnings:
        return JSONResponse({f"{kind}_id": entity_id, "warnings": warnings})
    return Response(status_code=status.HTTP_204_NO_CONTENT)
