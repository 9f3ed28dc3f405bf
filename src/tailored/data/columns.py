"""Canonical column names, used at every edge (files, frames, reports)."""

USER_ID = "user_id"
ITEM_ID = "item_id"
VALUE = "value"
TIMESTAMP = "timestamp"
EVENT_TYPE = "event_type"

USER_INDEX = "user_index"
ITEM_INDEX = "item_index"

SCORE = "score"
RANK = "rank"
REASONS = "reasons"
MODEL = "model"
"""Which model produced a user's list (``ease``, ``popularity (cold start)``...)."""
PREDICTION = "prediction"
REASON = "reason"
BASKET_ID = "basket_id"
