"""Meta-prompting end to end, offline: a scripted solver that answers in the graded format only
when its system prompt asks for it, a scripted proposer, GEPA's search, the gate, the Prompt
Registry on a real SQLite store, write-back and rollback."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from orchestra import FunctionConnector, Orchestra
from orchestra.app.cli import main
from orchestra.errors import ConfigError
from orchestra.improve.prompts import improve_prompts_async, with_reference
from orchestra.improve.prompts_search import OrchestraAdapter
from orchestra.improve.prompts_versions import rollback_prompt, write_back_prompt
from orchestra.prompts import SYSTEM_PROMPT_TAG
from orchestra.testing._wire import text_of
from orchestra.testing.fake_openai import FakeOpenAI
from orchestra.tracking.prompt_registry import PromptReference, PromptRegistry
from orchestra.tracking.reader import load_requests
from orchestra.types import ModelRequest

PROMPTS = [f"What is {a} + {b}?" for a, b in zip(range(11, 71), range(40, 100), strict=True)]
FORMAT = "Reply exactly as ANSWER: <number>."


def expected(prompt: str) -> int:
    a, b = map(int, re.findall(r"\d+", prompt))
    return a + b


def score(prompt: str, response: str) -> float:
    """1 when the answer is given in the graded format, else 0."""
    return 1.0 if response.strip() == f"ANSWER: {expected(prompt)}" else 0.0


def solve(request: ModelRequest) -> str:
    """Right either way, but in the graded format only when the system prompt asks for it."""
    total = expected(request.prompt)
    if request.system_prompt and "ANSWER: <number>" in request.system_prompt:
        return f"ANSWER: {total}"
    return f"Adding the two numbers gives {total}."


class Coach:
    """The proposer: first an unhelpful prompt, then the one that names the format."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def __call__(self, request: ModelRequest) -> str:
        self.asked.append(request.prompt)
        if len(self.asked) == 1:
            return "```\nYou are a careful assistant. Think step by step.\n```"
        return f"```\nSolve the arithmetic question. {FORMAT}\n```"


def write_config(folder: Path, **prompts: object) -> Path:
    config = {
        "framework": {"name": "arith"},
        "models": {"solver": {"type": "function"}, "coach": {"type": "function"}},
        "routing": {"rules": [{"task_type": "any", "providers": ["solver"]}]},
        "improvement": {"prompts": {"proposer": "coach", "max_evaluations": 120, **prompts}},
        "performance": {"retry": {"initial_delay_s": 0.001, "max_delay_s": 0.01}},
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


async def answers_under(config: Path, tracking, solver: FunctionConnector) -> list[float]:
    orch = Orchestra(config, tracking=tracking)
    orch.model_registry.register_connector("solver", solver)
    scores = []
    for prompt in PROMPTS[:5]:
        result = await orch.process_request(prompt, task_type="arith", user_id="u1")
        scores.append(score(prompt, result["response"]))
    await orch.aclose()
    return scores


async def test_a_better_system_prompt_is_found_written_back_versioned_and_rolled_back(tmp_path, tracking):
    config = write_config(tmp_path)
    solver, coach = FunctionConnector("solver", solve), Coach()
    orch = Orchestra(config, tracking=tracking)
    orch.model_registry.register_connector("solver", solver)
    for index, prompt in enumerate(PROMPTS):  # live traffic, logged: every answer misses the format
        await orch.process_request(prompt, task_type="arith", user_id=f"user-{index}")
    await orch.aclose()
    assert orch.flush_sync()

    report = await improve_prompts_async(
        config,
        "arith",
        tracking=tracking,
        connectors={"solver": solver, "coach": FunctionConnector("coach", coach)},
        scorer=score,
    )
    assert report.low_quality > 0 and report.current is None
    assert report.search is not None and report.search.improved
    assert FORMAT in report.candidate
    assert report.accepted, report.reason
    q = report.decision.quality
    assert (q.estimate_a, q.estimate_b) == (0.0, 1.0)
    assert any("Not good enough" in text for text in coach.asked)  # the proposer saw the failures

    change = write_back_prompt(report, config, tracking)
    registry = PromptRegistry(tracking)
    versions = registry.versions("arith-arith")
    assert [v.template for v in versions] == ["", report.candidate]
    assert registry.alias("arith-arith", "production").version == versions[-1].version
    written = yaml.safe_load(config.read_text(encoding="utf-8"))
    assert written["routing"]["rules"][0] == {
        "task_type": "arith",
        "providers": ["solver"],
        "system_prompt": "prompts:/arith-arith@production",
    }
    assert change.config_change is not None and change.config_change.previous.is_file()
    assert await answers_under(config, tracking, solver) == [1.0] * 5
    requests = load_requests(tracking=tracking)
    tags = [json.loads(t) for t in requests["tags_json"]]
    assert any(t.get(SYSTEM_PROMPT_TAG) == versions[-1].uri for t in tags)

    runs = {r.data.tags["orchestra.kind"] for r in _runs(tracking)}
    assert "improve-prompt-write-back" in runs

    back = rollback_prompt(config, "arith", tracking)
    assert back.current.version == versions[0].version
    assert registry.alias("arith-arith", "production").template == ""
    assert await answers_under(config, tracking, solver) == [0.0] * 5
    with pytest.raises(ConfigError, match="nothing to roll back"):
        rollback_prompt(config, "arith", tracking)


async def test_a_prompt_that_does_not_help_is_not_written(tmp_path, tracking):
    config = write_config(tmp_path, low_quality=0.5)
    solver = FunctionConnector("solver", solve)
    unhelpful = FunctionConnector("coach", lambda request: "```\nBe polite and brief.\n```")
    orch = Orchestra(config, tracking=tracking)
    orch.model_registry.register_connector("solver", solver)
    for index, prompt in enumerate(PROMPTS):
        await orch.process_request(prompt, task_type="arith", user_id=f"user-{index}")
    await orch.aclose()
    orch.flush_sync()
    report = await improve_prompts_async(
        config, "arith", tracking=tracking, connectors={"solver": solver, "coach": unhelpful}, scorer=score
    )
    assert not report.accepted and report.candidate is None
    assert "no proposed prompt scored better" in report.reason
    with pytest.raises(ConfigError, match="not accepted"):
        write_back_prompt(report, config, tracking)
    assert PromptRegistry(tracking).versions("arith-arith") == []


async def test_rule_prompts_resolve_from_the_registry_by_version_and_alias(tmp_path, tracking):
    registry = PromptRegistry(tracking)
    first = registry.register("math", "Think first.", message="one")
    second = registry.register("math", f"Solve it. {FORMAT}", message="two")
    registry.set_alias("math", "production", second.version)
    seen: list[str | None] = []

    def record(request: ModelRequest) -> str:
        seen.append(request.system_prompt)
        return "ok"

    for reference, wanted in [
        ("prompts:/math/1", first.template),
        ("prompts:/math@production", second.template),
    ]:
        config = {
            "models": {"solver": {"type": "function"}},
            "routing": {"rules": [{"providers": ["solver"], "system_prompt": reference}]},
        }
        orch = Orchestra(config, tracking=tracking)
        orch.model_registry.register_connector("solver", FunctionConnector("solver", record))
        await orch.process_request("hi", user_id="u1")
        await orch.process_request("hi", user_id="u1", system_prompt="the caller's own")
        await orch.aclose()
        assert seen[-2:] == [wanted, "the caller's own"]
    with pytest.raises(ConfigError, match=r"routing.rules.0.system_prompt: .*nope"):
        Orchestra(
            {"routing": {"rules": [{"providers": ["x"], "system_prompt": "prompts:/nope@production"}]}},
            tracking=tracking,
        )
    assert PromptReference.parse("prompts:/a-b/12") == PromptReference("a-b", 12, None)
    with pytest.raises(ConfigError, match="not a prompt reference"):
        PromptReference.parse("prompts:/a b")


def test_the_reference_goes_into_the_task_types_own_rules_or_a_new_one():
    raw = {"routing": {"rules": [{"task_type": "code", "providers": ["a"]}, {"providers": ["b"]}]}}
    inserted = with_reference(raw, "math", "prompts:/m@production")
    assert inserted["routing"]["rules"][1] == {
        "providers": ["b"],
        "task_type": "math",
        "system_prompt": "prompts:/m@production",
    }
    assert raw["routing"]["rules"][1] == {"providers": ["b"]}  # not mutated
    own = with_reference(raw, "code", "prompts:/c@production")
    assert own["routing"]["rules"][0]["system_prompt"] == "prompts:/c@production"
    with pytest.raises(ConfigError, match="no routing rule routes"):
        with_reference(
            {"routing": {"rules": [{"task_type": "code", "providers": ["a"]}]}}, "math", "prompts:/m@p"
        )


def test_the_adapter_reports_failures_as_feedback_for_reflection():
    from orchestra.improve.prompts_search import Answer

    def evaluate(system_prompt: str, prompts: list[str]) -> list[Answer]:
        return [
            Answer(p, "", 0.0, 0.0, "ProviderTimeout") if "x" in p else Answer(p, "fine", 1.0, 0.0)
            for p in prompts
        ]

    adapter = OrchestraAdapter(evaluate)
    batch = adapter.evaluate(["x1", "ok"], {"system_prompt": "s"}, capture_traces=True)
    assert batch.scores == [0.0, 1.0]
    dataset = adapter.make_reflective_dataset({"system_prompt": "s"}, batch, ["system_prompt"])
    assert "failed (ProviderTimeout)" in dataset["system_prompt"][0]["Feedback"]
    assert dataset["system_prompt"][1]["Feedback"].startswith("Correct")


def _runs(tracking):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking.tracking_uri)
    experiment = client.get_experiment_by_name(tracking.experiment)
    return client.search_runs([experiment.experiment_id])


class SystemAwareOpenAI(FakeOpenAI):
    """The fake OpenAI server, replying to the system prompt and the question together."""

    def _exchange(self, request, body):
        exchange = super()._exchange(request, body)
        system = next(
            (text_of(m.get("content")) for m in body.get("messages") or [] if m.get("role") == "system"), ""
        )
        return replace(exchange, prompt=f"{system}\x1e{exchange.prompt}")


def openai_reply(text: str) -> str:
    """A proposer on reflection prompts, the solver on questions."""
    system, question = text.split("\x1e", 1)
    if question.startswith("I provided an assistant"):
        return f"```\nSolve the arithmetic question. {FORMAT}\n```"
    return solve(ModelRequest(prompt=question, system_prompt=system or None))


def test_the_command_improves_and_rolls_back_a_prompt_over_the_openai_wire_format(tmp_path, tracking, capsys):
    with SystemAwareOpenAI(reply=openai_reply) as server:
        endpoint = {"type": "openai", "base_url": server.base_url, "api_key": "test-key"}
        config = write_config(tmp_path, scorer="tests.test_prompt_improvement:score")
        raw = yaml.safe_load(config.read_text(encoding="utf-8"))
        raw["models"] = {
            "solver": {**endpoint, "model": "gpt-4o-mini"},
            "coach": {**endpoint, "model": "gpt-4o"},
        }
        config.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
        (tmp_path / "mlflow.yaml").write_text(
            yaml.safe_dump(
                {
                    "tracking_uri": tracking.tracking_uri,
                    "experiment": tracking.experiment,
                    "artifact_location": tracking.artifact_location,
                    "spool_dir": str(tmp_path / "spool-cli"),
                    "trace_writer": "thread",
                }
            ),
            encoding="utf-8",
        )
        orch = Orchestra(config, tracking=tracking)
        for index, prompt in enumerate(PROMPTS):
            orch.process_request_sync(prompt, task_type="arith", user_id=f"user-{index}")
        orch.close()
        assert main(["improve", "prompts", "--config", str(config)]) == 2
        assert "needs --task-type" in capsys.readouterr().err
        assert main(["improve", "prompts", "--task-type", "arith", "--config", str(config)]) == 0
        out = capsys.readouterr().out
        assert "decision: accepted" in out and "write-back: prompts:/arith-arith@production" in out
        assert PromptRegistry(tracking).alias("arith-arith", "production").template.endswith(FORMAT)
        assert (
            main(["improve", "prompts", "--task-type", "arith", "--config", str(config), "--rollback"]) == 0
        )
        assert PromptRegistry(tracking).alias("arith-arith", "production").template == ""
