"""Which consensus strategy picks the best answer? Evaluated on the recorded AlpacaEval data.

For every DEV prompt, each strategy chooses among the recorded answers of (a) the three strong
providers (GPT-4, Claude 2.1, Gemini Pro) and (b) all seven non-reference models. The chosen
answer's judge label gives the win rate against the reference (GPT-4 Turbo), with a 95% CI.
Baselines: every single model, a random pick (its expectation), and the oracle (the best
possible pick). The judge favours longer answers, so the mean length of the chosen answers is
printed beside each row.

`confidence (history)` ranks providers by their mean quality on the other half of the prompts
(two-fold cross-fitting), so no prompt's own label is used to choose its answer.

    .venv/bin/python benchmarks/consensus_eval.py
"""

from __future__ import annotations

import asyncio
import hashlib

import numpy as np
import polars as pl
from alpaca import ALL, DATA, ROOT, STRONG

from orchestra.analysis.winrate import WinRate, win_rate
from orchestra.consensus import (
    ConfidenceConsensus,
    ConsensusStrategy,
    EmbeddingSpec,
    LexicalConsensus,
    SimilarityConsensus,
    VotingConsensus,
)
from orchestra.types import ModelResponse


def fold(prompt: str) -> int:
    return int(hashlib.sha256(prompt.encode()).hexdigest(), 16) % 2


def strategies(similarity: SimilarityConsensus, history: dict[int, dict[str, float]]) -> dict[str, object]:
    return {
        "lexical (TF-IDF medoid)": lambda f: LexicalConsensus(),
        "similarity (MiniLM medoid)": lambda f: similarity,
        "voting (clusters)": lambda f: VotingConsensus(similarity=similarity, cluster_threshold=0.75),
        "confidence (agreement)": lambda f: ConfidenceConsensus(similarity=similarity),
        "confidence (history)": lambda f: ConfidenceConsensus(
            provider_quality=history[1 - f], order=("logprobs", "historical_quality")
        ),
    }


async def choose(strategy: ConsensusStrategy, row: dict, models: list[str]) -> tuple[float, int]:
    answers = [
        ModelResponse(
            content=row[f"output_{m}"], provider=m, model_name=m, metadata={"quality": row[f"quality_{m}"]}
        )
        for m in models
    ]
    chosen = await strategy.find_consensus(answers, {})
    return chosen.metadata["quality"], len(chosen.content)


async def evaluate(table: pl.DataFrame) -> list[tuple[str, str, WinRate, float]]:
    rows = list(table.iter_rows(named=True))
    folds = [fold(r["instruction"]) for r in rows]
    history = {
        f: {
            m: float(np.mean([r[f"quality_{m}"] for r, g in zip(rows, folds, strict=True) if g == f]))
            for m in ALL
        }
        for f in (0, 1)
    }
    similarity = SimilarityConsensus(EmbeddingSpec(), cache_path=ROOT / ".orchestra" / "embeddings.sqlite")
    results = []
    for models, label in ((STRONG, "3 strong"), (ALL, "all 7")):
        for name, make in strategies(similarity, history).items():
            picks = [await choose(make(f), r, models) for r, f in zip(rows, folds, strict=True)]
            results.append(
                (label, name, win_rate(q for q, _ in picks), float(np.mean([n for _, n in picks])))
            )
        oracle = [max(r[f"quality_{m}"] for m in models) for r in rows]
        expected = [float(np.mean([r[f"quality_{m}"] for m in models])) for r in rows]
        best = max(models, key=lambda m: np.mean([r[f"quality_{m}"] for r in rows]))
        length = lambda key: float(np.mean([len(r[f"output_{key}"]) for r in rows]))  # noqa: E731
        random_length = float(np.mean([np.mean([len(r[f"output_{m}"]) for m in models]) for r in rows]))
        results.append(
            (label, f"best single model ({best})", win_rate(r[f"quality_{best}"] for r in rows), length(best))
        )
        results.append((label, "random pick (expected)", win_rate(expected), random_length))
        results.append((label, "oracle (best possible pick)", win_rate(oracle), float("nan")))
    for model in ALL:
        results.append(
            (
                "single",
                model,
                win_rate(r[f"quality_{model}"] for r in rows),
                float(np.mean([len(r[f"output_{model}"]) for r in rows])),
            )
        )
    return results


def main() -> None:
    frame = pl.read_parquet(DATA).with_columns((pl.col("preference") - 1).alias("quality"))
    table = frame.pivot(
        on="model", index="instruction", values=["quality", "output"], aggregate_function="first"
    )
    results = asyncio.run(evaluate(table))
    print(f"{'candidates':<10} {'strategy':<42} {'win rate vs GPT-4 Turbo [95% CI]':<34} {'mean chars':>10}")
    for label, name, rate, chars in results:
        print(f"{label:<10} {name:<42} {rate!s:<34} {chars:>10.0f}")
    print(f"{table.height} AlpacaEval DEV prompts; win rate = mean judge preference (win 1, draw 0.5).")
    similarity_3 = next(
        rate for label, name, rate, _ in results if label == "3 strong" and name.startswith("similarity")
    )
    print(f"RESULT similarity_3_strong_winrate {similarity_3.percent:.2f}")


if __name__ == "__main__":
    main()
