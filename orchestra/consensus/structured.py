"""Structured consensus: keep the answers that parse as the requested pydantic model, pick the one
that agrees most with the others.

    consensus:
      per_task_type: {document_analysis: structured}

    with structured_output(Sentiment):     # or RequestOptions(schema=Sentiment) for one request
        result = await orch.process_request(prompt, task_type="document_analysis", require_consensus=True)

Each answer is read as JSON (a fenced ```json block, else the outermost `{...}`) and validated
against the request's `TaskContext.schema` (set with `structured_output` or given as
`RequestOptions(schema=...)`); answers that do
not parse are never chosen. Among the valid ones, the winner has the highest mean agreement
(`agreement_matrix`: the model's own `agreement_with(other)` if it has one, else TF-IDF cosine of
its `text_for_agreement()`, else of its JSON) with the other valid ones; tie rule: the earliest
in routing order.
Confidence = (1 + the winner's summed agreement with the other valid answers) / all answers, so
disagreeing or malformed answers lower it. The returned content is the winner, as canonical JSON.
No valid answer at all raises `StructuredOutputError` (and the request is logged as failed).
"""

from __future__ import annotations

import json
import re
from typing import Any, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ValidationError

from orchestra.consensus.base import ConsensusOutcome, ConsensusStrategy
from orchestra.consensus.context import TaskContext
from orchestra.consensus.context import structured_output as structured_output  # its home until now
from orchestra.consensus.lexical import tfidf_similarity
from orchestra.errors import ConsensusError
from orchestra.types import ModelResponse


class StructuredOutputError(ConsensusError):
    """No provider's answer could be read as the structured result asked for; `errors` says why,
    per provider."""

    def __init__(self, what: str, errors: dict[str, str], *, request_id: str | None = None) -> None:
        detail = "; ".join(f"{provider}: {error}" for provider, error in errors.items())
        super().__init__(f"no valid {what} in any answer ({detail})", request_id=request_id)
        self.errors = dict(errors)


@runtime_checkable
class SupportsAgreement(Protocol):
    """A result model that measures its own agreement with another result."""

    def agreement_with(self, other: Any) -> float: ...


def agreement_matrix(results: list[BaseModel]) -> np.ndarray:
    """Pairwise agreement in [0, 1] of parsed answers (see the module doc for the measure)."""
    agreeing = [r for r in results if isinstance(r, SupportsAgreement)]
    if results and len(agreeing) == len(results):
        return np.array([[1.0 if a is b else float(a.agreement_with(b)) for b in agreeing] for a in agreeing])

    def text(result: BaseModel) -> str:
        own = getattr(result, "text_for_agreement", None)
        return own() if callable(own) else result.model_dump_json()

    return tfidf_similarity([text(r) for r in results])


_JSON_BLOCK = re.compile(r"```(?:json)?\s*\n(.*?)```", re.DOTALL)


def parse_structured(text: str, schema: type[BaseModel]) -> tuple[BaseModel | None, str | None]:
    """(`schema` instance, None), or (None, why the text is not one)."""
    block = _JSON_BLOCK.search(text)
    start, end = text.find("{"), text.rfind("}")
    candidate = block.group(1) if block else text[start : end + 1] if 0 <= start < end else ""
    if not candidate.strip():
        return None, "no JSON object in the answer"
    try:
        return schema.model_validate(json.loads(candidate)), None
    except json.JSONDecodeError as err:
        return None, f"invalid JSON: {err.msg} at line {err.lineno}"
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(root)"
        return None, f"{schema.__name__}.{where}: {first['msg']} ({err.error_count()} error(s))"


class StructuredConsensus(ConsensusStrategy):
    """Pick the valid structured answer that agrees most with the others (see the module doc)."""

    name = "structured"

    def __init__(self, *, confidence_threshold: float = 0.5) -> None:
        self.confidence_threshold = confidence_threshold

    def schema_for(self, context: TaskContext) -> type[BaseModel]:
        schema = context.schema
        if schema is None:
            raise ConsensusError("structured consensus needs a schema: use `with structured_output(Model):`")
        return schema

    async def decide(self, responses: list[ModelResponse], context: TaskContext) -> ConsensusOutcome:
        """The valid answer agreeing most with the others (see the module doc for the rule)."""
        if not responses:
            raise ConsensusError("structured consensus needs at least one response")
        schema = self.schema_for(context)
        parsed = [parse_structured(r.content, schema) for r in responses]
        providers = [r.provider for r in responses]
        errors = {providers[i]: error for i, (_, error) in enumerate(parsed) if error is not None}
        valid = [i for i, (result, _) in enumerate(parsed) if result is not None]
        if not valid:
            raise StructuredOutputError(schema.__name__, errors, request_id=context.request_id)
        results = [parsed[i][0] for i in valid]
        matrix = agreement_matrix([r for r in results if r is not None])
        others = len(valid) - 1
        means = [(matrix[k].sum() - matrix[k, k]) / others if others else 1.0 for k in range(len(valid))]
        best = max(range(len(valid)), key=lambda k: (round(float(means[k]), 9), -k))
        chosen = valid[best]
        confidence = float(1.0 + matrix[best].sum() - matrix[best, best]) / len(responses)
        winner = results[best]
        assert winner is not None
        outcome = ConsensusOutcome(
            method=self.name,
            chosen_index=chosen,
            chosen_provider=providers[chosen],
            confidence=confidence,
            agreement=float(means[best]),
            providers=providers,
            scores=[
                round(float(means[valid.index(i)]), 6) if i in valid else 0.0 for i in range(len(responses))
            ],
            similarity=[[round(float(v), 6) for v in row] for row in matrix],
            agreeing_providers=[providers[valid[k]] for k in range(len(valid)) if matrix[best, k] >= 0.5],
            low_agreement=confidence < self.confidence_threshold,
            content=winner.model_dump_json(),
            details={
                "schema": schema.__name__,
                "valid": [i in valid for i in range(len(responses))],
                "errors": errors,
            },
        )
        return outcome
