"""Stages of the Recommender: what adjusts, filters and re-ranks a scorer's candidates at request time."""

from tailored.rank.context import Context, parse_context
from tailored.rank.base import STAGES, Catalogue, Request, Reranker, Stage, create_stage, stage_names
from tailored.rank.launch import NewItemSlots
from tailored.rank.location import LocationAdjuster
from tailored.rank.recent import RecentActivityBooster
from tailored.rank.seasonal import SeasonalAdjuster
from tailored.rank.time_of_day import TimeOfDayAdjuster

__all__ = ["STAGES", "Catalogue", "Context", "LocationAdjuster", "NewItemSlots", "RecentActivityBooster", "Request",
           "Reranker", "SeasonalAdjuster", "Stage", "TimeOfDayAdjuster", "create_stage", "parse_context", "stage_names"]
