"""Deterministic, sticky assignment of units to arms: a salted hash, no state to keep.

    shares = {"control": 0.9, "mixtral": 0.1}
    assignment = assign("user-17", experiment="mixtral-canary", salt="s1", shares=shares)
    assignment.arm, assignment.probability        # "control", 0.9 (the same every time for user-17)

The unit's key, the experiment's name and the salt are hashed (SHA-256) to a number u in [0, 1);
the arms own consecutive intervals of [0, 1) in the order given, each as wide as its share.
Changing the salt reshuffles the units; changing the shares moves only the units near the
boundaries. The probability logged with a request is its arm's share: the propensity the
off-policy estimators and an A/B report need.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

ANONYMOUS = "anonymous"
"""`process_request`'s default user: not a unit (every anonymous request would share one arm)."""


@dataclass(frozen=True)
class Assignment:
    """The arm a unit is assigned to, and the probability of that assignment."""

    arm: str
    probability: float
    unit: str | None  # the unit's key (None: the request had no usable unit)


def unit_fraction(unit: str, experiment: str, salt: str) -> float:
    """A uniform number in [0, 1) from the hash of (salt, experiment, unit)."""
    digest = hashlib.sha256(f"{salt}\x1f{experiment}\x1f{unit}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign(unit: str, *, experiment: str, salt: str, shares: dict[str, float]) -> Assignment:
    """The arm owning the unit's hash in [0, 1) (arms in the order of `shares`)."""
    u = unit_fraction(unit, experiment, salt)
    upper = 0.0
    arms = list(shares.items())
    for arm, share in arms:
        upper += share
        if u < upper:
            return Assignment(arm, share, unit)
    arm, share = arms[-1]  # u within rounding of 1.0
    return Assignment(arm, share, unit)


def unit_key(
    kind: str, user_id: str | None, session_id: str | None, request_id: str | None = None
) -> str | None:
    """The key a request is assigned by: its user, its session, or (unit `request`) its request
    id (`request_id`, else a fresh one). None when the request has no such unit (an anonymous
    user, no session)."""
    if kind == "request":
        return request_id or uuid.uuid4().hex
    value = user_id if kind == "user_id" else session_id
    if not value or (kind == "user_id" and value == ANONYMOUS):
        return None
    return value
