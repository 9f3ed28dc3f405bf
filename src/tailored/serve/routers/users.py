"""``PUT /v1/users/{user_id}`` (attributes: a new user is served at once from them; what the model cannot use of them
is answered) and ``DELETE`` (erasure). ``user_id`` is the rest of the path: any id an event may carry, ``/``
included."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response, status

from tailored.serve.routers.attributes import put_attributes, warnings_answer
from tailored.serve.security import ERRORS, require
from tailored.serve.validation import Attributes, Identifier

router = APIRouter(prefix="/v1/users", tags=["users"], responses=ERRORS)


@router.put("/{user_id:path}", status_code=status.HTTP_204_NO_CONTENT, responses={
    **warnings_answer("user", "(a column it was not trained on, an unseen value...), each scored as unknown"),
    409: {"description": "The user was erased: nothing is stored."}})
def put_user(request: Request, user_id: Identifier, attributes: Attributes,
             _: str = Depends(require("admin"))) -> Response:
    """Store the user's attributes; 204, or 200 with the warnings when the model cannot use all of them."""
    return put_attributes(request, "user", user_id, attributes)


@router.delete("/{user_id:path}", status_code=status.HTTP_204_NO_CONTENT)
def delete_user(request: Request, user_id: Identifier, _: str = Depends(require("admin"))) -> Response:
    """GDPR erasure: events, attributes and exposures deleted, the user unknown to the served model from now on,
    and never brought back by a later event or export; audited without the id."""
    request.app.state.service.erase_user(user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
