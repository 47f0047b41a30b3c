"""What a cascade knows about a cheap answer before deciding to keep it: numeric signals.

    signals = answer_signals(answer, prior=0.7, mean_chars=300.0, previous=[], logprob=None)

The same function computes the signals when a cascade is fitted on logged answers and when it
runs, so the two cannot drift apart. Signals, in `SIGNALS` order:

- `prior`: the predicted probability of a good answer for this prompt and provider, before
  seeing the answer (the learned router's calibrated estimate, or the provider's mean);
- `log_chars`, `relative_chars`: the answer's length, absolute (log) and against the provider's
  mean (short answers are often cut off, long ones rambling);
- `empty`: nothing but white space;
- `final_answer`: states a final answer ("#### 42", "the answer is", a boxed value), and
  `final_at_end`: states it on its last line (a worked answer that got to its end);
- `ends_cleanly`: ends with punctuation, a number, a closing bracket or a code fence;
- `log_numbers`, `distinct_numbers`: how many numbers it contains (log), and the share of them
  that are distinct (worked solutions reuse their intermediate results);
- `unbalanced`: an unclosed calculator tag, bracket or code fence (a cut-off answer);
- `agreement`, `same_answer`: similarity to the answers of earlier stages (TF-IDF cosine), and
  whether the extracted short answers (numbers, yes/no, choices) coincide; 0 at the first stage;
- `logprob`, `has_logprob`: the provider's own confidence from logprobs, when it reports one.
"""

from __future__ import annotations

import math
import re

import numpy as np

from orchestra.consensus.lexical import tfidf_similarity
from orchestra.consensus.voting import normalise_short_answer

SIGNALS = (
    "prior",
    "log_chars",
    "relative_chars",
    "empty",
    "final_answer",
    "final_at_end",
    "ends_cleanly",
    "log_numbers",
    "distinct_numbers",
    "unbalanced",
    "agreement",
    "same_answer",
    "logprob",
    "has_logprob",
)

_FINAL = re.compile(r"####\s*\S|\b(?:final answer|the answer is|answer:)|\\boxed\{", re.IGNORECASE)
_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
_CLEAN_END = re.compile(r"""[.!?)\]}"'`*]\s*$|\d\s*$|```\s*$""")


def answer_signals(
    answer: str,
    *,
    prior: float,
    mean_chars: float,
    previous: list[str] | None = None,
    logprob: float | None = None,
) -> np.ndarray:
    """The signals of one answer (see the module docstring), as a float vector."""
    text = answer.strip()
    chars = len(text)
    unbalanced = (
        text.count("<<") != text.count(">>")
        or text.count("```") % 2 == 1
        or text.count("(") > text.count(")")
    )
    numbers = _NUMBER.findall(text)
    agreement = same = 0.0
    earlier = [p for p in (previous or []) if p.strip()]
    if earlier and text:
        similarity = tfidf_similarity([text, *earlier])
        agreement = float(similarity[0, 1:].max())
        key = normalise_short_answer(_tail(text))
        same = float(key is not None and any(normalise_short_answer(_tail(p)) == key for p in earlier))
    return np.array(
        [
            prior,
            math.log1p(chars),
            chars / mean_chars if mean_chars > 0 else 1.0,
            float(chars == 0),
            float(bool(_FINAL.search(text))),
            float(bool(_FINAL.search(_tail(text)))),
            float(bool(_CLEAN_END.search(text))),
            math.log1p(len(numbers)),
            len(set(numbers)) / len(numbers) if numbers else 1.0,
            float(unbalanced),
            agreement,
            same,
            0.0 if logprob is None else float(logprob),
            float(logprob is not None),
        ]
    )


def _tail(text: str) -> str:
    """The last line of an answer, where a worked solution states its result."""
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""
