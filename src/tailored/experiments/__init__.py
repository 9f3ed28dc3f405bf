"""A/B experiments: sticky assignment by a keyed hash (`assignment`), per-arm statistics, CUPED, the sample-ratio
check and peeking-safe decisions (`statistics`), and the status the service and the CLI report (`status`)."""

from tailored.experiments.assignment import EXCLUDED, HOLDOUT, Assignment
from tailored.experiments.statistics import METRICS, Moments, UserTotals, compare, decide, srm_p_value, verdict
from tailored.experiments.status import arms_from_frame, experiment_status

__all__ = ["EXCLUDED", "HOLDOUT", "METRICS", "Assignment", "Moments", "UserTotals", "arms_from_frame", "compare",
           "decide", "experiment_status", "srm_p_value", "verdict"]
