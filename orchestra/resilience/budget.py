"""Spend limits in USD, checked before each call against the call's worst-case cost.

A call reserves its worst case (input tokens estimated, output at max_tokens); the reservation
is settled with the actual cost when the call ends, so concurrent calls cannot jointly overrun.

    budget = Budget(5.00, "run 'sweep-3'")
    reservation = budget.reserve(0.02, provider="openai")   # raises BudgetExceeded if it could pass
    budget.settle(reservation, actual=0.013)
"""

from __future__ import annotations

import threading

from orchestra.errors import BudgetExceeded


class Budget:
    def __init__(self, limit_usd: float, label: str) -> None:
        self.limit_usd = limit_usd
        self.label = label
        self.spent_usd = 0.0
        self.reserved_usd = 0.0
        self._lock = threading.Lock()

    def reserve(self, amount_usd: float, *, provider: str) -> float:
        with self._lock:
            if self.spent_usd + self.reserved_usd + amount_usd > self.limit_usd:
                raise BudgetExceeded(
                    f"{self.label}: budget ${self.limit_usd:.4f} would be exceeded "
                    f"(spent ${self.spent_usd:.4f}, in flight ${self.reserved_usd:.4f}, "
                    f"this call up to ${amount_usd:.4f}); refused before the call",
                    provider=provider,
                )
            self.reserved_usd += amount_usd
            return amount_usd

    def settle(self, reservation_usd: float, actual_usd: float) -> None:
        with self._lock:
            self.reserved_usd = max(self.reserved_usd - reservation_usd, 0.0)
            self.spent_usd += actual_usd

    @property
    def remaining_usd(self) -> float:
        return self.limit_usd - self.spent_usd - self.reserved_usd
