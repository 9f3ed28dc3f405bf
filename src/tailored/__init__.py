"""tailored: a recommendation engine — data quality, splits, algorithms, trustworthy evaluation.

The curated public API; everything else is reachable through its module.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "Dataset": "tailored.data.dataset",
    "read_attributes": "tailored.data.io",
    "read_interactions": "tailored.data.io",
    "write_table": "tailored.data.io",
    "QualityRules": "tailored.data.quality",
    "check_quality": "tailored.data.quality",
    "generate_retail": "tailored.data.synthetic",
    "evaluate": "tailored.eval.evaluator",
    "evaluate_lists": "tailored.eval.evaluator",
    "paired_test": "tailored.eval.significance",
    "algorithm_names": "tailored.models.base",
    "create_scorer": "tailored.models.base",
    "Recommender": "tailored.pipeline.recommender",
    "build_recommender": "tailored.pipeline.recommender",
    "load_model": "tailored.registry.model_dir",
    "save_model": "tailored.registry.model_dir",
    **{name: "tailored.split" for name in (
        "Split", "carve_validation", "check_leakage", "split_by_name", "split_cold_items", "split_cold_users",
        "split_leave_last_out", "split_leave_one_out_random", "split_per_user", "split_random", "split_temporal",
    )},
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    """Import on first use, so that `tailored --help` and a bad-input error come back at once."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'tailored' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
