"""Evaluation: metrics (pure functions), the evaluator with bootstrap CIs, and paired significance tests."""

from tailored.eval.evaluator import DEFAULT_METRICS, EvalReport, evaluate, evaluate_lists, ranked_lists
from tailored.eval.metrics import RankedLists, metric
from tailored.eval.significance import PairedTestResult, paired_test

__all__ = [
    "DEFAULT_METRICS",
    "EvalReport",
    "PairedTestResult",
    "RankedLists",
    "evaluate",
    "evaluate_lists",
    "metric",
    "paired_test",
    "ranked_lists",
]
