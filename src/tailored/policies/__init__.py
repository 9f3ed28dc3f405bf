"""The slate decision on top of a scorer's candidates: the scorer proposes, a policy decides which items are shown
where, and says with what probability (exact propensities, logged with every list). Exploring policies learn online
from the feedback on what they showed (`Policy.learn`); their state is rebuilt from the store after a restart."""

from tailored.policies.base import POLICIES, Candidates, Feedback, Policy, Slate, parse_policy

__all__ = ["POLICIES", "Candidates", "Feedback", "Policy", "Slate", "parse_policy"]
