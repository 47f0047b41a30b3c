"""The search for a better system prompt: GEPA (reflective prompt evolution) with orchestra as
the system under optimisation and an orchestra provider as the reflection model.

    result = search_prompts(seed, train, val, evaluate=evaluate, reflect=reflect, budget=200, seed=0)
    result.best, result.candidates, result.scores

`gepa.optimize` drives the search: it evaluates the current prompt on a minibatch of logged
failures (`evaluate`: answers through `process_request`, scored), shows the reflection model the
prompt, the answers and their feedback, takes its proposal (the text between ``` fences), keeps
it if it scores better on the same minibatch, and scores kept prompts on the validation prompts;
the best on those is returned. Why GEPA and not a hand-written loop: its adapter interface takes
our evaluator and our reflection model as they are, it tracks a Pareto front of prompts per
validation prompt (a prompt that fixes some failures is kept even when another fixes others),
and it stops on a budget of evaluations.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orchestra.logs import get_logger

logger = get_logger("orchestra.improve.prompts")
COMPONENT = "system_prompt"


@dataclass(frozen=True)
class Answer:
    """One prompt answered under a candidate system prompt."""

    prompt: str
    response: str
    quality: float  # 0 for a failed request
    cost_usd: float
    error: str | None = None


Evaluate = Callable[[str, list[str]], list[Answer]]
"""(system prompt, prompts) -> their answers, synchronously (the caller bridges to its loop)."""
Reflect = Callable[[str], str]
"""The reflection model: a prompt in, its text out."""


@dataclass(frozen=True)
class SearchResult:
    candidates: list[str]  # every prompt GEPA kept, the seed first
    scores: list[float]  # each one's mean quality on the validation prompts
    best: str
    best_index: int
    evaluations: int
    seed_scores: list[float]  # the seed prompt's score on each validation prompt

    @property
    def improved(self) -> bool:
        return self.best_index != 0 and self.scores[self.best_index] > self.scores[0]


class OrchestraAdapter:
    """`gepa.GEPAAdapter` over orchestra: a candidate is {"system_prompt": text}."""

    propose_new_texts = None

    def __init__(self, evaluate: Evaluate) -> None:
        self._evaluate = evaluate

    def evaluate(self, batch: list[str], candidate: dict[str, str], capture_traces: bool = False) -> Any:
        from gepa import EvaluationBatch

        answers = self._evaluate(candidate[COMPONENT], list(batch))
        return EvaluationBatch(
            outputs=[a.response for a in answers],
            scores=[a.quality for a in answers],
            trajectories=answers if capture_traces else None,
        )

    def make_reflective_dataset(
        self, candidate: dict[str, str], eval_batch: Any, components_to_update: list[str]
    ) -> Mapping[str, Sequence[Mapping[str, Any]]]:
        records = []
        for answer in eval_batch.trajectories or []:
            if answer.error is not None:
                feedback = f"The request failed ({answer.error}): there was no answer."
            elif answer.quality >= 1.0:
                feedback = f"Correct (score {answer.quality:g})."
            else:
                feedback = f"Not good enough (score {answer.quality:g} of 1)."
            records.append(
                {"Inputs": answer.prompt, "Generated Outputs": answer.response, "Feedback": feedback}
            )
        return {component: records for component in components_to_update}


class _QuietLogger:
    def log(self, message: str) -> None:
        logger.debug("gepa: %s", message)


def search_prompts(
    seed_prompt: str,
    train: list[str],
    val: list[str],
    *,
    evaluate: Evaluate,
    reflect: Reflect,
    budget: int,
    minibatch: int,
    seed: int,
) -> SearchResult:
    """GEPA from `seed_prompt`: reflect on minibatches of `train`, select on `val`."""
    import gepa

    result = gepa.optimize(  # type: ignore[var-annotated]
        seed_candidate={COMPONENT: seed_prompt},
        trainset=train,
        valset=val,
        adapter=OrchestraAdapter(evaluate),  # type: ignore[arg-type]
        reflection_lm=reflect,  # type: ignore[arg-type]
        reflection_minibatch_size=minibatch,
        max_metric_calls=budget,
        candidate_selection_strategy="pareto",
        logger=_QuietLogger(),
        seed=seed,
        raise_on_exception=True,
    )
    candidates = [c[COMPONENT] for c in result.candidates]
    scores = [float(s) for s in result.val_aggregate_scores]
    best = result.best_idx
    seed_scores = [float(v) for v in result.val_subscores[0].values()]
    return SearchResult(
        candidates, scores, candidates[best], best, int(result.total_metric_calls or 0), seed_scores
    )
