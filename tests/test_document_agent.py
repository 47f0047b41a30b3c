"""The document-analysis agent over scripted providers (agreeing, disagreeing, failing, malformed)
and a real MLflow store; structured consensus and chunking; reports."""

from __future__ import annotations

import json
import re

import pytest

from orchestra import FunctionConnector, ModelRequest, OrchestraError
from orchestra.analysis import load_requests
from orchestra.applications import DocumentAnalysisAgent, StructuredOutputError, UnknownAnalysisType
from orchestra.applications.documents import (
    Compliance,
    KeyPoints,
    Sentiment,
    Summary,
    split_text,
)
from orchestra.errors import InvalidRequest

CONTRACT = (
    "Acme Ltd supplies the software to Beta GmbH for twelve months.\n\n"
    "The customer accepts unlimited liability for any damage.\n\n"
    "The parties are pleased with the partnership and expect it to grow."
)


def document_of(prompt: str) -> str:
    return prompt.split("<<<\n", 1)[1].rsplit("\n>>>", 1)[0]


def analyst(sentiment: str = "positive", score: float = 0.6, extra_point: str = ""):
    """A provider that answers every analysis correctly, from the document in the prompt."""

    def respond(request: ModelRequest) -> str:
        prompt, text = request.prompt, document_of(request.prompt)
        first = text.split(".")[0].strip()
        if '"title": "Sentiment"' in prompt:
            return json.dumps({"label": sentiment, "score": score})
        if '"title": "KeyPoints"' in prompt:
            return (
                "```json\n"
                + json.dumps({"points": [first + ".", *([extra_point] if extra_point else [])]})
                + "\n```"
            )
        if '"title": "Compliance"' in prompt:
            quoted = [s.strip() for s in re.split(r"(?<=\.)\s", text) if "unlimited liability" in s]
            findings = [{"rule": "No unlimited liability", "severity": "high", "passage": q} for q in quoted]
            return json.dumps({"findings": findings})
        return json.dumps({"summary": f"Summary: {first}."})

    return respond


def malformed(request: ModelRequest) -> str:
    return "I think the document is rather positive overall!"


@pytest.fixture
def build_agent(make_orchestra):
    def build(connectors: dict[str, FunctionConnector], **options) -> DocumentAnalysisAgent:
        rules = [
            {"task_type": "document_analysis", "providers": list(connectors), "require_consensus": True},
            {"providers": [next(iter(connectors))]},
        ]
        consensus = {"per_task_type": {"document_analysis": "structured"}, "confidence_threshold": 0.6}
        orch = make_orchestra(connectors, rules=rules, consensus=consensus)
        return DocumentAnalysisAgent(orch, **options)

    return build


def three_analysts(**third) -> dict[str, FunctionConnector]:
    return {
        "a": FunctionConnector("a", analyst()),
        "b": FunctionConnector("b", analyst()),
        "c": FunctionConnector("c", analyst(**third)),
    }


async def test_each_analysis_is_a_structured_result_agreed_by_three_providers(build_agent):
    agent = build_agent(three_analysts())
    summary = await agent.analyze_document(CONTRACT, "summary")
    points = await agent.analyze_document(CONTRACT, "key_points")
    sentiment = await agent.analyze_document(CONTRACT, "sentiment")
    compliance = await agent.analyze_document(CONTRACT, "compliance")
    assert summary.result == Summary(
        summary="Summary: Acme Ltd supplies the software to Beta GmbH for twelve months."
    )
    assert isinstance(points.result, KeyPoints) and len(points.result.points) == 1
    assert sentiment.result == Sentiment(label="positive", score=0.6)
    assert isinstance(compliance.result, Compliance)
    (finding,) = compliance.result.findings
    assert (
        finding.severity == "high"
        and finding.passage == "The customer accepts unlimited liability for any damage."
    )
    for analysis in (summary, points, sentiment, compliance):
        (meta,) = analysis.metadata
        assert meta["consensus_method"] == "structured" and meta["providers_used"] == ["a", "b", "c"]
        assert analysis.confidence == pytest.approx(1.0) and analysis.chunks == 1


async def test_a_disagreeing_provider_is_outvoted_and_lowers_the_confidence(build_agent):
    agent = build_agent(three_analysts(sentiment="negative", score=-0.5))
    sentiment = await agent.analyze_document(CONTRACT, "sentiment")
    assert sentiment.result.label == "positive"
    assert sentiment.confidence == pytest.approx(2 / 3)
    assert sentiment.metadata[0]["low_agreement"] is False


async def test_malformed_answers_are_never_chosen(build_agent):
    connectors = {"bad": FunctionConnector("bad", malformed), **three_analysts()}
    connectors.pop("c")
    agent = build_agent(connectors)
    sentiment = await agent.analyze_document(CONTRACT, "sentiment")
    assert sentiment.result == Sentiment(label="positive", score=0.6)
    assert sentiment.metadata[0]["answered_by"] == "a"
    assert sentiment.confidence == pytest.approx(2 / 3) and sentiment.metadata[0]["low_agreement"] is False


async def test_wrong_fields_count_as_malformed_too(build_agent):
    out_of_range = FunctionConnector("c", lambda r: json.dumps({"label": "positive", "score": 7}))
    agent = build_agent({"a": FunctionConnector("a", analyst()), "c": out_of_range})
    sentiment = await agent.analyze_document(CONTRACT, "sentiment")
    assert sentiment.metadata[0]["answered_by"] == "a" and sentiment.confidence == pytest.approx(0.5)
    assert sentiment.metadata[0]["low_agreement"] is True


async def test_when_every_answer_is_malformed_the_error_is_clear_and_logged(build_agent, tracking):
    agent = build_agent(
        {"x": FunctionConnector("x", malformed), "y": FunctionConnector("y", lambda r: "{oops}")}
    )
    with pytest.raises(StructuredOutputError, match="no valid Sentiment") as caught:
        await agent.analyze_document(CONTRACT, "sentiment")
    assert set(caught.value.errors) == {"x", "y"} and "invalid JSON" in caught.value.errors["y"]
    await agent.orchestra.flush()
    logged = load_requests(tracking=tracking, columns=["status", "error_type"])
    assert logged["status"].to_list() == ["error"] and logged["error_type"].to_list() == [
        "StructuredOutputError"
    ]


async def test_a_failing_provider_leaves_the_consensus_to_the_others(build_agent):
    connectors = three_analysts()
    connectors["c"] = FunctionConnector("c", fail_always=True)
    points = await build_agent(connectors).analyze_document(CONTRACT, "key_points")
    meta = points.metadata[0]
    assert meta["providers_used"] == ["a", "b"] and [f["provider"] for f in meta["providers_failed"]] == ["c"]
    assert points.result.points == ["Acme Ltd supplies the software to Beta GmbH for twelve months."]


async def test_an_unknown_analysis_type_lists_the_allowed_ones(build_agent):
    agent = build_agent(three_analysts())
    with pytest.raises(UnknownAnalysisType, match="summary, key_points, sentiment, compliance") as caught:
        await agent.analyze_document(CONTRACT, "translation")
    assert isinstance(caught.value, InvalidRequest) and isinstance(caught.value, OrchestraError)
    with pytest.raises(InvalidRequest):
        await agent.analyze_document("   ", "summary")


LONG = "\n\n".join(
    f"Section {i}. Batch {i} was delivered on time. The customer accepts unlimited liability for any damage."
    for i in range(12)
)


async def test_a_long_document_is_chunked_merged_and_the_chunking_logged(build_agent, tracking, caplog):
    same = analyst(extra_point="Deliveries were on time.")
    agent = build_agent({name: FunctionConnector(name, same) for name in "abc"}, max_chars=400)
    caplog.set_level("INFO", logger="orchestra.applications.documents")
    points = await agent.analyze_document(LONG, "key_points")
    assert points.chunks == len(split_text(LONG, 400)) > 1
    assert points.result.points.count("Deliveries were on time.") == 1  # said for every chunk, kept once
    assert len(points.result.points) == points.chunks + 1
    assert "split into" in caplog.text
    summary = await agent.analyze_document(LONG, "summary")
    assert len(summary.metadata) == summary.chunks + 1  # one request per chunk, one to merge
    compliance = await agent.analyze_document(LONG, "compliance")
    assert len(compliance.result.findings) == 1  # the same passage in every chunk, reported once
    await agent.orchestra.flush()
    tags = [json.loads(t) for t in load_requests(tracking=tracking, columns=["tags_json"])["tags_json"]]
    chunked = [t for t in tags if t["analysis_type"] == "key_points"]
    assert sorted(int(t["chunk_index"]) for t in chunked) == list(range(points.chunks))
    assert {t["chunk_count"] for t in chunked} == {str(points.chunks)} and chunked[0][
        "document_chars"
    ] == str(len(LONG))


async def test_chunks_that_disagree_in_sign_merge_to_mixed(build_agent):
    def by_section(request: ModelRequest) -> str:
        negative = "Section 0." in document_of(request.prompt)
        return json.dumps(
            {"label": "negative" if negative else "positive", "score": -0.8 if negative else 0.4}
        )

    connectors = {name: FunctionConnector(name, by_section) for name in ("a", "b")}
    sentiment = await build_agent(connectors, max_chars=400).analyze_document(LONG, "sentiment")
    assert sentiment.result.label == "mixed" and -0.8 < sentiment.result.score < 0.4


async def test_findings_that_do_not_quote_the_document_are_dropped(build_agent):
    invented = {"rule": "r", "severity": "critical", "passage": "The customer waives every right."}
    liar = FunctionConnector("c", lambda r: json.dumps({"findings": [invented]}))
    connectors = {"a": FunctionConnector("a", lambda r: json.dumps({"findings": [invented]})), "c": liar}
    compliance = await build_agent(connectors).analyze_document(CONTRACT, "compliance")
    assert compliance.result.findings == [] and compliance.dropped[0]["passage"] == invented["passage"]


async def test_reports_render_as_markdown_and_escaped_html(build_agent):
    agent = build_agent(three_analysts())
    results = {
        kind: await agent.analyze_document(CONTRACT, kind) for kind in ("summary", "sentiment", "compliance")
    }
    markdown = await agent.generate_report(results, "markdown", title="Contract review")
    assert markdown.startswith("# Contract review\n")
    assert "## Sentiment\n\n**positive** (score +0.60 on -1 ... +1)" in markdown
    assert (
        '| high | No unlimited liability | "The customer accepts unlimited liability for any damage." |'
        in markdown
    )
    results["compliance"].result.findings[0].passage = "<script>alert(1)</script>"
    html = await agent.generate_report(list(results.values()), "html")
    assert "<script>" not in html and "&lt;script&gt;" in html and "<h2>Summary</h2>" in html
    with pytest.raises(InvalidRequest, match="markdown, html"):
        await agent.generate_report(results, "pdf")


def test_split_text_respects_the_limit_and_keeps_every_word():
    chunks = split_text(LONG, 120)
    assert all(len(chunk) <= 120 for chunk in chunks)
    assert " ".join(" ".join(chunks).split()) == " ".join(LONG.split())
    assert split_text("x" * 250, 100) == ["x" * 100, "x" * 100, "x" * 50]


async def test_structured_consensus_reads_fenced_json_and_needs_a_schema():
    from orchestra import ModelResponse
    from orchestra.consensus import StructuredConsensus, structured_output
    from orchestra.consensus.structured import parse_structured
    from orchestra.errors import ConsensusError

    assert parse_structured('Sure:\n```json\n{"label": "neutral", "score": 0}\n```', Sentiment)[
        0
    ] == Sentiment(label="neutral", score=0.0)
    assert "score" in parse_structured('{"label": "neutral"}', Sentiment)[1]
    answers = [ModelResponse(content='{"label": "neutral", "score": 0.1}', provider="p", model_name="m")]
    with pytest.raises(ConsensusError, match="schema"):
        await StructuredConsensus().find_consensus(answers, {})
    with structured_output(Sentiment):
        chosen = await StructuredConsensus().find_consensus(answers, {})
    assert chosen.content == '{"label":"neutral","score":0.1}' and chosen.confidence_score == 1.0
