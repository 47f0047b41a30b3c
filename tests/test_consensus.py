"""The minimal lexical consensus: medoid under TF-IDF cosine, documented tie rule, outcome metrics."""

from __future__ import annotations

import pytest

from orchestra import ConsensusManager, ConsensusOutcome, ConsensusStrategy, LexicalConsensus, ModelResponse
from orchestra.config.schema import ConsensusSettings


def answer(provider: str, text: str) -> ModelResponse:
    return ModelResponse(content=text, provider=provider, model_name=provider)


async def test_medoid_is_the_answer_closest_to_the_others():
    responses = [
        answer("x", "Bananas are yellow fruit rich in potassium."),
        answer("a", "The Eiffel Tower is in Paris, France."),
        answer("b", "Paris, France is where the Eiffel Tower stands."),
        answer("c", "The Eiffel Tower stands in Paris."),
    ]
    chosen = await LexicalConsensus(similarity_threshold=0.3).find_consensus(responses, {})
    outcome: ConsensusOutcome = chosen.metadata["consensus"]
    assert chosen.provider in {"a", "b", "c"}
    assert outcome.providers == ["x", "a", "b", "c"]
    assert "x" not in outcome.agreeing_providers
    assert len(outcome.similarity) == 4 and outcome.similarity[0][0] == 1.0
    assert 0 <= outcome.agreement <= outcome.confidence <= 1
    assert chosen.confidence_score == outcome.confidence


async def test_tie_goes_to_the_earliest_in_routing_order():
    identical = [answer("first", "same words"), answer("second", "same words"), answer("third", "same words")]
    chosen = await LexicalConsensus().find_consensus(identical, {})
    assert chosen.provider == "first"
    assert chosen.metadata["consensus"].agreement == pytest.approx(1.0)


async def test_empty_and_punctuation_answers_do_not_crash():
    chosen = await LexicalConsensus().find_consensus(
        [answer("a", "?"), answer("b", "!"), answer("c", "?")], {}
    )
    assert chosen.provider == "a"


async def test_low_agreement_is_flagged():
    responses = [answer("a", "alpha beta"), answer("b", "gamma delta"), answer("c", "epsilon zeta")]
    outcome = (await LexicalConsensus().find_consensus(responses, {})).metadata["consensus"]
    assert outcome.low_agreement and outcome.agreement == 0.0


async def test_custom_strategy_registered_by_name_and_chosen_per_task_type():
    class Longest(ConsensusStrategy):
        async def find_consensus(self, responses, task_context):
            return max(responses, key=lambda r: len(r.content))

        def calculate_confidence(self, responses):
            return 0.42

    manager = ConsensusManager(ConsensusSettings(per_task_type={"essay": "longest"}))
    manager.register_strategy("longest", Longest())
    responses = [answer("a", "short"), answer("b", "a much longer answer")]
    chosen, outcome = await manager.decide(responses, {"task_type": "essay"})
    assert chosen.provider == "b"
    assert (outcome.method, outcome.chosen_index, outcome.confidence) == ("longest", 1, 0.42)
    _, lexical = await manager.decide(responses, {"task_type": "other"})
    assert lexical.method == "lexical"
    with pytest.raises(TypeError):
        manager.register_strategy("bad", object())


def test_tfidf_similarity_equals_scikit_learn_on_recorded_answers():
    import numpy as np
    import polars as pl
    from sklearn.feature_extraction.text import TfidfVectorizer

    from orchestra.consensus.lexical import tfidf_similarity
    from tests.conftest import ALPACA

    table = pl.read_parquet(ALPACA).pivot(
        on="model", index="instruction", values="output", aggregate_function="first"
    )
    for row in table.head(60).iter_rows(named=True):
        texts = [row["gpt4"], row["claude-2.1"], row["gemini-pro"], row["Mistral-7B-Instruct-v0.2"]]
        vectors = TfidfVectorizer(sublinear_tf=True).fit_transform(texts)
        expected = (vectors @ vectors.T).toarray()
        np.fill_diagonal(expected, 1.0)
        np.testing.assert_allclose(tfidf_similarity(texts), np.clip(expected, 0, 1), atol=1e-12)
