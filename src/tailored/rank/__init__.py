"""Stages of the Recommender: what adjusts, filters and re-ranks a scorer's candidates at request time."""

from tailored.rank.base import STAGES, Catalogue, Request, Reranker, Stage, create_stage
from tailored.rank.calendar import CalendarAdjuster, load_calendar
from tailored.rank.diversity import MMRDiversifier
from tailored.rank.exposure import ExposureCap, LongTailBoost
from tailored.rank.launch import NewItemSlots
from tailored.rank.location import LocationAdjuster
from tailored.rank.recent import RecentActivityBooster
from tailored.rank.rules import BusinessRules, MaxShare, load_rules
from tailored.rank.seasonal import SeasonalAdjuster, SeasonCap
from tailored.rank.time_of_day import TimeOfDayAdjuster

__all__ = ["STAGES", "BusinessRules", "CalendarAdjuster", "Catalogue", "ExposureCap", "LocationAdjuster",
           "LongTailBoost", "MMRDiversifier", "MaxShare", "NewItemSlots", "RecentActivityBooster", "Request",
           "Reranker", "SeasonCap", "SeasonalAdjuster", "Stage", "TimeOfDayAdjuster", "create_stage", "load_calendar",
           "load_rules"]
