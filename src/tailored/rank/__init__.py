"""Stages of the Recommender: what adjusts, filters and re-ranks a scorer's candidates at request time."""

from tailored.rank.context import Context, parse_context
from tailored.rank.base import STAGES, Stage, create_stage, stage_names
from tailored.rank.seasonal import SeasonalAdjuster
from tailored.rank.time_of_day import TimeOfDayAdjuster

__all__ = ["STAGES", "Context", "SeasonalAdjuster", "Stage", "TimeOfDayAdjuster", "create_stage", "parse_context", "stage_names"]
