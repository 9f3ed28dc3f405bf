"""tailored: a recommendation engine — data quality, splits, algorithms, trustworthy evaluation.

The curated public API; everything else is reachable through its module.
"""

__version__ = "0.1.0"  # before the imports: registry/model_dir.py records it

from tailored.data.dataset import Dataset
from tailored.data.io import read_attributes, read_interactions, write_table
from tailored.data.quality import QualityRules, check_quality
from tailored.eval.evaluator import evaluate, evaluate_lists
from tailored.eval.significance import paired_test
from tailored.models.base import algorithm_names, create_scorer
from tailored.pipeline import Recommender
from tailored.registry.model_dir import load_model, save_model
from tailored.split import (
    Split,
    carve_validation,
    check_leakage,
    split_by_name,
    split_cold_items,
    split_cold_users,
    split_leave_last_out,
    split_leave_one_out_random,
    split_per_user,
    split_random,
    split_temporal,
)

__all__ = [
    "Dataset",
    "QualityRules",
    "Recommender",
    "Split",
    "algorithm_names",
    "carve_validation",
    "check_leakage",
    "check_quality",
    "create_scorer",
    "evaluate",
    "evaluate_lists",
    "load_model",
    "paired_test",
    "read_attributes",
    "read_interactions",
    "save_model",
    "split_by_name",
    "split_cold_items",
    "split_cold_users",
    "split_leave_last_out",
    "split_leave_one_out_random",
    "split_per_user",
    "split_random",
    "split_temporal",
    "write_table",
]
