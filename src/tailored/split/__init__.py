"""Splitters: each returns a Split of one Dataset (shared IdMaps) that can be frozen to disk."""

from tailored.split.base import Split
from tailored.split.cold_start import split_cold_items, split_cold_users
from tailored.split.leakage import check_leakage
from tailored.split.leave_out import split_leave_last_out, split_leave_one_out_random
from tailored.split.per_user import split_per_user
from tailored.split.random import split_random
from tailored.split.registry import SPLITTERS, split_by_name
from tailored.split.temporal import split_temporal
from tailored.split.validation import VALIDATION_METHODS, carve_validation

__all__ = [
    "SPLITTERS",
    "VALIDATION_METHODS",
    "Split",
    "carve_validation",
    "check_leakage",
    "split_cold_items",
    "split_cold_users",
    "split_leave_last_out",
    "split_leave_one_out_random",
    "split_per_user",
    "split_by_name",
    "split_random",
    "split_temporal",
]
