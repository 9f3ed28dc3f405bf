"""Item resources: attributes (``PUT``), similar and complementary items, trending items."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response, status

from tailored.pipeline.complementary import COMPLEMENTARY_ITEM_ID, complementary_items
from tailored.data.columns import ITEM_ID, RANK, SCORE
from tailored.serve.routers.attributes import put_attributes, warnings_answer
from tailored.serve.security import ERRORS, require
from tailored.serve.validation import Attributes, Identifier
from tailored.pipeline.similar import SIMILAR_ITEM_ID, similar_items
from tailored.pipeline.trending import trending_items

router = APIRouter(prefix="/v1", tags=["items"], responses=ERRORS)


@router.put("/items/{item_id}", status_code=status.HTTP_204_NO_CONTENT, responses=warnings_answer(
    "item", "(a training column missing, a column it was not trained on, no value it knows)"))
def put_item(request: Request, item_id: Identifier, attributes: Attributes,
             _: str = Depends(require("admin"))) -> Response:
    """Store the item's attributes; 204, or 200 with the warnings when the model cannot use all of them."""
    return put_attributes(request, "item", item_id, attributes)


@router.get("/items/{item_id}/similar")
def similar(request: Request, item_id: Identifier, k: int = Query(10, ge=1, le=1000),
            _: str = Depends(require("recommend"))) -> dict[str, Any]:
    frame = similar_items(request.app.state.service.model, [item_id], k)
    return {"item_id": item_id, "items": _rows(frame, SIMILAR_ITEM_ID)}


@router.get("/items/{item_id}/complementary")
def complementary(request: Request, item_id: Identifier, k: int = Query(10, ge=1, le=1000),
                  _: str = Depends(require("recommend"))) -> dict[str, Any]:
    frame = complementary_items(request.app.state.service.model, [item_id], k)
    return {"item_id": item_id, "items": _rows(frame, COMPLEMENTARY_ITEM_ID, ["lift", "confidence", "source"])}


@router.get("/trending")
def trending(request: Request, k: int = Query(10, ge=1, le=1000), window_days: int = Query(7, ge=1, le=55),
             _: str = Depends(require("recommend"))) -> dict[str, Any]:
    frame = trending_items(request.app.state.service.model, k, window_days)
    return {"items": _rows(frame, ITEM_ID, ["window_count", "expected_count"])}


def _rows(frame: Any, id_column: str, extra: list[str] | None = None) -> list[dict[str, Any]]:
    table = frame[[id_column, SCORE, RANK, *(extra or [])]].rename(columns={id_column: "item_id"})
    table = table.astype({"item_id": str}).astype(object).where(table.notna(), None)
    return table.to_dict("records")
