"""Off-policy evaluation, the Python API: what a candidate policy would have earned on the traffic the engine
logged, without showing it to anyone.

```python
from tailored import ope
log = ope.read_feedback_log("log.csv")                      # or ope.read_log(db="sqlite:///events.db")
result = ope.evaluate_log(log, "softmax:temperature=0.5", model=ope.load_model("model/"))
result["estimates"]["snips"]                                # {"value", "ci": [lo, hi], "ess"}
```

`evaluate_log` builds the target's exact probabilities of every logged item at its position (over the model's
candidates for each list's user), selects and fits the reward model of ``dm``/``dr`` (refitted on every bootstrap
resample) and runs the estimators of `tailored.eval.ope` (`estimate`, over a `SlateLog`) with their bootstrap
intervals and warnings."""

from tailored.data.feedback_log import read_feedback_log
from tailored.data.open_bandit import read_open_bandit
from tailored.eval.ope import (
    ESTIMATORS,
    REWARDS,
    OffPolicyReport,
    PositionBasedRewards,
    RewardRefit,
    SlateLog,
    estimate,
)
from tailored.jobs.ope import evaluate_log, read_log
from tailored.registry.model_dir import load_model

__all__ = ["ESTIMATORS", "REWARDS", "OffPolicyReport", "PositionBasedRewards", "RewardRefit", "SlateLog", "estimate",
           "evaluate_log", "load_model", "read_feedback_log", "read_log", "read_open_bandit"]
