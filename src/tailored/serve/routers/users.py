"""``PUT /v1/users/{user_id}`` (attributes: a new user is served at once from them) and ``DELETE`` (erasure)."""

from __future__ import annotations

from fastapi import APIRouter, Body, Depends, Request, Response, status

from tailored.serve.security import ERRORS, require
from tailored.serve.validation import Attributes, Identifier

router = APIRouter(prefix="/v1/users", tags=["users"], responses=ERRORS)


@router.put("/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
def put_user(request: Request, user_id: Identifier, attributes: Attributes = Body(...),
             _: str = Depends(require("admin"))) -> Response:
    request.app.state.service.put_user(user_id, attributes)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_user(request: Request, user_id: Identifier, _: str = Depends(require("admin"))) -> Response:
    """GDPR erasure: events, attributes and exposures deleted, the user unknown to the served model from now on,
    and never brought back by a later event or export; audited without the id."""
    request.app.state.service.erase_user(user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
