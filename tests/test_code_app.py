"""Execution-checked consensus and the code-generation app, over scripted providers and a real
MLflow store; the candidates run in the real sandbox."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestra import FunctionConnector, ModelRequest, ModelResponse
from orchestra.analysis import load_requests
from orchestra.applications import CodeGenerationApp
from orchestra.applications.code_generation import asserts_from_answer
from orchestra.config.schema import ConsensusSettings
from orchestra.consensus import ExecutionConsensus, execution_check, rank_by_execution
from orchestra.consensus.execution import output_agreement
from orchestra.errors import ConfigError, InvalidRequest
from orchestra.sandbox import CodeCheck

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="the namespace sandbox needs root (CI runs as root)"
)

GOOD = "```python\ndef is_prime(n):\n    return n > 1 and all(n % d for d in range(2, int(n**0.5) + 1))\n```"
OFF_BY_ONE = "```python\ndef is_prime(n):\n    return all(n % d for d in range(2, n))\n```"
HANGS = "```python\ndef is_prime(n):\n    while True:\n        pass\n```"
TESTS = (
    "```python\nassert is_prime(2)\nassert not is_prime(1)\nassert is_prime(13)\nassert not is_prime(15)\n```"
)
HOSTILE = {
    "fork_bomb": "import os\nwhile True:\n    os.fork()",
    "reads_files": f"print(open({str(Path(__file__).resolve())!r}).read())",
    "network": "import socket\nsocket.create_connection(('127.0.0.1', 22), timeout=1)",
    "exits_early": "import os\nos._exit(0)",
    "floods": "while True:\n    print('x' * 10000)",
}


def responder(code_answer: str, tests_answer: str = TESTS, review: str = "Looks fine; add type hints."):
    def respond(request: ModelRequest) -> str:
        if request.prompt.startswith("Write unit tests"):
            return tests_answer
        if request.prompt.startswith("Review"):
            return review
        return code_answer

    return respond


CODE_RULES = [
    {"task_type": "code_tests", "providers": ["tester"]},
    {"task_type": "code_review", "providers": ["good", "buggy"], "require_consensus": True},
    {"task_type": "code", "complexity": "simple", "providers": ["buggy"]},
    {"task_type": "code", "providers": ["buggy", "hangs", "good"], "require_consensus": True},
    {"providers": ["good"]},
]
CODE_CONSENSUS = {
    "per_task_type": {"code": "execution", "code_review": "lexical"},
    "strategies": {"execution": {"wall_time_s": 20, "per_test_timeout_s": 0.5}},
}


@pytest.fixture
def code_orchestra(make_orchestra):
    connectors = {
        "good": FunctionConnector("good", responder(GOOD)),
        "buggy": FunctionConnector("buggy", responder(OFF_BY_ONE)),
        "hangs": FunctionConnector("hangs", responder(HANGS)),
        "tester": FunctionConnector("tester", responder(GOOD)),
    }
    return make_orchestra(connectors, rules=CODE_RULES, consensus=CODE_CONSENSUS), connectors


# ---- the rule, as a pure function ------------------------------------------------------------


def test_most_tests_passed_wins_whatever_the_order():
    ranking = rank_by_execution([0.5, 1.0, 0.75], [])
    assert (ranking.chosen, ranking.decided_by, ranking.order) == (1, "tests passed", [1, 2, 0])


def test_a_tie_on_tests_goes_to_the_candidate_whose_outputs_agree_most():
    outputs = [["1", "2"], ["1", "3"], ["0", "3"], ["1", "3"]]
    ranking = rank_by_execution([1.0, 1.0, 1.0, 0.0], outputs)
    assert ranking.chosen == 1 and ranking.decided_by == "output agreement"
    assert output_agreement(outputs) == pytest.approx([1 / 3, 2 / 3, 1 / 3, 2 / 3])


def test_a_full_tie_goes_to_routing_order_and_exceptions_never_agree():
    assert output_agreement([["!ValueError"], ["!ValueError"]]) == [0.0, 0.0]
    ranking = rank_by_execution([0.5, 0.5], [["!ValueError"], ["!ValueError"]])
    assert (ranking.chosen, ranking.decided_by) == (0, "routing order")


# ---- the strategy ----------------------------------------------------------------------------


def answers(*contents: str) -> list[ModelResponse]:
    return [ModelResponse(content=c, provider=f"p{i}", model_name="m") for i, c in enumerate(contents)]


async def test_tests_given_in_the_task_context_pick_the_correct_candidate():
    check = CodeCheck(
        tests=asserts_from_answer(TESTS), inputs=["is_prime(9)", "is_prime(1)"], per_test_timeout_s=0.5
    )
    chosen = await ExecutionConsensus().find_consensus(answers(OFF_BY_ONE, HANGS, GOOD), {"execution": check})
    outcome = chosen.metadata["consensus"]
    assert chosen.provider == "p2" and chosen.confidence_score == 1.0
    assert outcome.scores == [0.75, 0.0, 1.0] and outcome.details["decided_by"] == "tests passed"


async def test_hostile_candidates_are_failures_and_the_caller_is_unharmed():
    contents = [f"```python\n{source}\n```" for source in HOSTILE.values()] + [GOOD]
    with execution_check(CodeCheck(tests=asserts_from_answer(TESTS), per_test_timeout_s=0.5)):
        chosen = await ExecutionConsensus().find_consensus(answers(*contents), {"prompt": "p"})
    outcome = chosen.metadata["consensus"]
    assert chosen.content == GOOD
    assert outcome.scores == [0.0] * len(HOSTILE) + [1.0]
    assert "output_limit" in outcome.details["sandbox_outcomes"]


async def test_asserts_in_the_prompt_are_the_tests_when_none_are_given():
    prompt = "Implement is_prime.\n" + TESTS
    chosen = await ExecutionConsensus().find_consensus(answers(OFF_BY_ONE, GOOD), {"prompt": prompt})
    assert chosen.provider == "p1" and chosen.metadata["consensus"].details["tests"] == 4


async def test_without_tests_a_candidate_passes_when_it_runs_to_the_end():
    chosen = await ExecutionConsensus().find_consensus(
        answers("raise SystemExit(1)", "x = 1"), {"prompt": "p"}
    )
    assert chosen.provider == "p1" and chosen.confidence_score == 1.0


def test_execution_options_are_checked():
    with pytest.raises(ConfigError, match="unknown"):
        ExecutionConsensus.from_settings(ConsensusSettings(strategies={"execution": {"wall_tme_s": 3}}))
    strategy = ExecutionConsensus.from_settings(
        ConsensusSettings(strategies={"execution": {"memory_mb": 256}})
    )
    assert strategy.sandbox.limits.memory_mb == 256


async def test_execution_is_usable_as_the_default_strategy(make_orchestra):
    connectors = {
        "buggy": FunctionConnector("buggy", responder(OFF_BY_ONE)),
        "good": FunctionConnector("good", responder(GOOD)),
    }
    orch = make_orchestra(
        connectors,
        rules=[{"providers": ["buggy", "good"], "require_consensus": True}],
        consensus={"default_strategy": "execution"},
    )
    result = await orch.process_request("Implement is_prime so that:\n" + TESTS, user_id="u1")
    assert result["response"] == GOOD
    assert result["metadata"]["consensus_method"] == "execution"
    assert result["metadata"]["confidence"] == 1.0


# ---- the app ---------------------------------------------------------------------------------


async def test_complex_code_goes_to_three_providers_and_execution_consensus(code_orchestra, tracking):
    orch, _ = code_orchestra
    app = CodeGenerationApp(orch)
    result = await app.generate_code("Write is_prime(n).", complexity="complex")
    assert (
        result.code
        == "def is_prime(n):\n    return n > 1 and all(n % d for d in range(2, int(n**0.5) + 1))\n"
    )
    assert len(result.tests) == 4 and result.pass_fraction == 1.0
    code_meta = result.metadata["code"]
    assert code_meta["providers_used"] == ["buggy", "hangs", "good"]
    assert (code_meta["consensus_method"], code_meta["answered_by"]) == ("execution", "good")
    assert result.metadata["tests"]["providers_used"] == ["tester"]
    await orch.flush()
    logged = load_requests(tracking=tracking, columns=["tags_json", "task_type"])
    assert sorted(logged["task_type"].to_list()) == ["code", "code_tests"]
    assert all('"app": "code_generation"' in tags for tags in logged["tags_json"].to_list())


async def test_simple_code_goes_to_one_provider_and_its_test_results_are_reported(code_orchestra):
    orch, _ = code_orchestra
    result = await CodeGenerationApp(orch).generate_code("Write is_prime(n).", complexity="simple")
    assert result.metadata["code"]["providers_used"] == ["buggy"]
    assert result.metadata["code"]["consensus_applied"] is False
    assert result.pass_fraction == 0.75 and result.test_report.passed == [True, False, True, True]


async def test_given_tests_are_used_and_no_tests_means_no_checks(code_orchestra):
    orch, connectors = code_orchestra
    app = CodeGenerationApp(orch)
    given = await app.generate_code("Write is_prime(n).", tests=["assert is_prime(7)"], complexity="complex")
    assert given.tests == ["assert is_prime(7)"] and connectors["tester"].calls == 0
    bare = await app.generate_code("Write is_prime(n).", include_tests=False, complexity="simple")
    assert (bare.tests, bare.test_report, bare.pass_fraction) == ([], None, None)
    with pytest.raises(InvalidRequest):
        await app.generate_code("  ")


async def test_review_goes_to_two_providers_with_consensus(code_orchestra):
    orch, _ = code_orchestra
    review = await CodeGenerationApp(orch).review_code(GOOD)
    assert review.review == "Looks fine; add type hints."
    assert review.metadata["providers_used"] == ["good", "buggy"]
    assert review.metadata["consensus_applied"] is True


def test_tests_are_read_from_an_answer_with_their_imports():
    text = "Here you go:\n```python\nimport math\nassert f(4) == math.sqrt(16)\nprint('x')\n```"
    assert asserts_from_answer(text) == ["import math\nassert f(4) == math.sqrt(16)"]
    assert asserts_from_answer("assert f(1) == 1\nthis is not python\nassert f(2) == 2") == [
        "assert f(1) == 1",
        "assert f(2) == 2",
    ]
