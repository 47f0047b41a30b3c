"""Three disjoint prompt splits for the improvement loop: fit, select and confirm.

    split = split_prompts(prompts, select_fraction=0.2, confirm_fraction=0.5, seed=0)
    split.fit, split.select, split.confirm                # lists of (prompt, task type)

- fit: the learned router's neighbours and calibrators, the cascade's acceptance models;
- select: the cost weight, the cascade threshold, and the choice between candidates;
- confirm: used once, for the decision only (current config vs candidate, paired by prompt).

A prompt's split follows from a hash of (seed, prompt), so it does not depend on the order or
on which other prompts are present: a prompt logged again later stays in its split.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from orchestra.errors import ConfigError

Prompt = tuple[str, str]


@dataclass(frozen=True)
class Split:
    fit: list[Prompt]
    select: list[Prompt]
    confirm: list[Prompt]

    def texts(self, part: str) -> list[str]:
        return [p for p, _ in getattr(self, part)]

    def __str__(self) -> str:
        return f"fit {len(self.fit)}, select {len(self.select)}, confirm {len(self.confirm)} prompts"


def fraction(prompt: str, salt: str) -> float:
    """A uniform number in [0, 1) from the prompt's hash."""
    digest = hashlib.sha256(f"{salt}:{prompt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_prompts(
    prompts: list[Prompt], *, select_fraction: float, confirm_fraction: float, seed: int = 0
) -> Split:
    """Confirm gets `confirm_fraction` of the prompts, select `select_fraction`, fit the rest."""
    if select_fraction + confirm_fraction >= 1.0:
        raise ConfigError(
            f"improvement.select_fraction ({select_fraction}) + holdout_fraction ({confirm_fraction}) "
            "must leave prompts to fit on (sum < 1)"
        )
    parts: dict[str, list[Prompt]] = {"fit": [], "select": [], "confirm": []}
    for prompt in prompts:
        u = fraction(prompt[0], f"split-{seed}")
        part = (
            "confirm"
            if u < confirm_fraction
            else "select"
            if u < confirm_fraction + select_fraction
            else "fit"
        )
        parts[part].append(prompt)
    return Split(parts["fit"], parts["select"], parts["confirm"])
