"""``GET /v1/policy``: the serving policy and what it has learnt (an operator's view; ``admin`` scope)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from tailored.serve.security import ERRORS, require

router = APIRouter(prefix="/v1", tags=["policy"], responses=ERRORS)


class PolicyState(BaseModel):
    policy: str = Field(description="The spec of the serving policy (--policy).")
    impressions: int = Field(description="Shown (item, position) rows learnt: since start, and rebuilt from the store.")
    rewards: int = Field(description="Attributed rewards learnt (clicks: one per credited list slot).")
    reward_sum: float
    fingerprint: str = Field(description="An order-independent hash of every row learnt: two processes, or a process "
                                         "before and after a restart, learnt the same feedback if they show the same.")


@router.get("/policy")
def policy_state(request: Request, _: str = Depends(require("admin"))) -> PolicyState:
    """What the policy has learnt online (the state is rebuilt from the store at start and after an erasure)."""
    return PolicyState(**request.app.state.service.policy.state())
