"""What the service accepts from clients: ids, attributes and events, checked before anything is stored.

Ids are NFC-normalised (so the same visible id is one id) and refuse control, format (bidirectional overrides,
zero-width) and surrogate characters; other unicode and any printable text, SQL included, is stored verbatim.
Numbers are strict (``"5"``, ``true`` or ``false`` are not numbers) and finite (JSON has no NaN; Python's parser
accepts it and a NaN would break the JSON answer); an event's value lies within plus or minus ``ABSURD_VALUE`` (the
bound training applies), an attribute's within plus or minus ``MAX_ATTRIBUTE_NUMBER``, and timestamps may not lie
more than ``FUTURE_TOLERANCE_SECONDS`` ahead of the server's clock.
"""

from __future__ import annotations

import time
import unicodedata
from typing import Annotated, Literal

from fastapi import Body
from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, Strict, StrictBool, StringConstraints,
                      field_validator)

from tailored.data.quality import ABSURD_VALUE

MAX_ID_LENGTH = 200
MAX_ATTRIBUTES = 200
MAX_ATTRIBUTE_NUMBER = 2.0**53
"""The largest integer every JSON client reads back exactly."""
FUTURE_TOLERANCE_SECONDS = 300
REFUSED_CATEGORIES = {"Cc": "control", "Cf": "format (bidirectional or zero-width)", "Cs": "surrogate"}


def clean_id(value: str) -> str:
    """``value`` NFC-normalised; a ValueError names the first refused character."""
    value = unicodedata.normalize("NFC", value)
    for position, character in enumerate(value):
        kind = REFUSED_CATEGORIES.get(unicodedata.category(character))
        if kind is not None:
            raise ValueError(f"{kind} character U+{ord(character):04X} at position {position} is not allowed in an id")
    if not value.strip():
        raise ValueError("an id must not be blank")
    return value


Identifier = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH), AfterValidator(clean_id)]
AttributeInteger = Annotated[int, Strict(), Field(ge=-MAX_ATTRIBUTE_NUMBER, le=MAX_ATTRIBUTE_NUMBER)]
AttributeNumber = Annotated[float, Strict(),
                            Field(allow_inf_nan=False, ge=-MAX_ATTRIBUTE_NUMBER, le=MAX_ATTRIBUTE_NUMBER)]
AttributeValue = (StrictBool | AttributeInteger | AttributeNumber | Annotated[str, StringConstraints(max_length=10_000)]
                  | list[str] | None)
Attributes = Annotated[dict[Annotated[str, StringConstraints(min_length=1, max_length=100)], AttributeValue],
                       Body(max_length=MAX_ATTRIBUTES,
                            description="Attribute columns (strings, numbers, lists of strings).")]
"""A request body (declared with `Body`: FastAPI drops a `Field`'s limits from a body parameter)."""
EventType = Literal["view", "click", "cart", "purchase", "rating"]


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: Identifier
    user_id: Identifier
    item_id: Identifier
    type: EventType
    value: Annotated[float, Strict(), Field(allow_inf_nan=False, ge=-ABSURD_VALUE, le=ABSURD_VALUE)] | None = None
    timestamp: Annotated[float, Strict(), Field(allow_inf_nan=False, ge=0)] | None = Field(
        None, description="Unix seconds; default: when received.")
    exposure_id: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(
        None, description="The exposure_id of the list the event answers (clicks, carts and purchases are credited "
                          "to it; without it, to the user's latest list showing the item within the window).")

    @field_validator("timestamp")
    @classmethod
    def not_in_the_future(cls, timestamp: float | None) -> float | None:
        if timestamp is not None and timestamp > time.time() + FUTURE_TOLERANCE_SECONDS:
            raise ValueError(f"timestamp {timestamp:.6g} is more than {FUTURE_TOLERANCE_SECONDS} s in the future")
        return timestamp
