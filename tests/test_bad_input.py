"""Bad input gets a named error carrying the request id, and the request is still logged:
bad arguments, mid-stream failures, streams never read; at load time, datasets in another
format, replay models their dataset lacks, and sweeps with an invalid arm."""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import AsyncIterator

import polars as pl
import pytest
import yaml

from orchestra import (
    ConfigError,
    FunctionConnector,
    InvalidRequest,
    Orchestra,
    ProviderError,
    StreamAbandoned,
)
from orchestra.providers.base import BaseModelConnector
from orchestra.providers.recorded import ReplayDataset
from orchestra.tracking.reader import read_request_table
from orchestra.types import ModelRequest, ModelResponse
from tests.conftest import ALPACA, alpaca_config


@pytest.fixture
def orch(make_orchestra):
    return make_orchestra({"echo": FunctionConnector("echo")})


async def logged(orch: Orchestra, scope) -> pl.DataFrame:
    await orch.flush()
    return read_request_table(orch.tracking_settings, scope.run_id)


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"user_id": "u\udce9"}, r"user_id holds a lone surrogate \('\\udce9' at position 1\)"),
        ({"prompt": "caf\udce9 au lait"}, "prompt holds a lone surrogate"),
        ({"system_prompt": "be \ud800 brief"}, "system_prompt holds a lone surrogate"),
        ({"session_id": "s\udfff"}, "session_id holds a lone surrogate"),
        ({"task_type": "q\udce9a"}, "task_type holds a lone surrogate"),
        ({"tags": {"team": "r\udce9d"}}, r"tags\['team'\] holds a lone surrogate"),
        ({"tags": {"t\udce9am": "red"}}, r"tags key 't\\udce9am' holds a lone surrogate"),
        ({"complexity_override": "bogus"}, r"complexity_override must be one of simple, medium, complex"),
        ({"temperature": 5}, r"temperature must be a number from 0 to 2 \(got 5\)"),
        ({"temperature": float("nan")}, "temperature must be a number from 0 to 2"),
        ({"temperature": True}, "temperature must be a number"),
        ({"max_tokens": 0}, r"max_tokens must be an integer >= 1 \(got 0\)"),
        ({"max_tokens": 2.5}, "max_tokens must be an integer"),
        ({"timeout": 0}, r"timeout must be a number of seconds > 0 \(got 0\)"),
        ({"timeout": -3.0}, "timeout must be a number of seconds > 0"),
        ({"min_providers": 0}, "min_providers must be an integer >= 1"),
        ({"require_consensus": "yes"}, "require_consensus must be True, False or None"),
        ({"tags": ["not", "a", "mapping"]}, "tags must be a mapping of strings to strings"),
        ({"prompt": "   "}, "prompt must be a non-empty string"),
    ],
)
async def test_bad_arguments_are_named_and_the_request_is_still_logged(orch, arguments, named):
    request = {"prompt": "hello", "user_id": "u1", **arguments}
    async with orch.run("bad-input") as scope:
        with pytest.raises(InvalidRequest, match=named) as caught:
            await orch.process_request(**request)
    assert caught.value.request_id
    table = await logged(orch, scope)
    row = table.row(0, named=True)
    assert table.height == 1 and row["request_id"] == caught.value.request_id
    assert (row["status"], row["error_type"]) == ("error", "InvalidRequest")
    assert all(c < "\ud800" or c > "\udfff" for v in row.values() if isinstance(v, str) for c in v)


async def test_good_arguments_at_the_edges_are_accepted(orch):
    for options in ({"temperature": 0}, {"temperature": 2.0}, {"max_tokens": 1}, {"timeout": 0.5}):
        assert (await orch.process_request("hi", user_id="u1", **options))["response"] == "hi"
    result = await orch.process_request("hi", user_id="u1", complexity_override="complex")
    assert result["metadata"]["complexity"] == "complex"


async def test_one_lone_surrogate_does_not_cost_the_other_rows(orch):
    async with orch.run("batch") as scope:
        outcomes = await asyncio.gather(
            *(orch.process_request(f"q{i}", user_id="u\udce9" if i == 17 else f"u{i}") for i in range(60)),
            return_exceptions=True,
        )
    assert sum(isinstance(o, InvalidRequest) for o in outcomes) == 1
    table = await logged(orch, scope)
    assert table.height == 60 and table.filter(pl.col("status") == "error")["user_id"].to_list() == [
        "u\ufffd"
    ]


class BreaksMidStream(BaseModelConnector):
    """A connector whose stream sends one delta, then fails with an error that is not ours."""

    async def generate(self, request: ModelRequest) -> ModelResponse:
        return self.response("whole", model_name="m")

    async def stream(self, request: ModelRequest) -> AsyncIterator[str | ModelResponse]:
        yield "first "
        raise RuntimeError("socket went away")

    async def validate_connection(self) -> bool:
        return True

    def get_supported_models(self) -> list[str]:
        return ["m"]


async def test_a_mid_stream_failure_is_an_orchestra_error_with_the_request_id(make_orchestra):
    orch = make_orchestra({"breaks": BreaksMidStream("breaks")})
    async with orch.run("mid-stream") as scope:
        stream = await orch.process_request_stream("tell me", user_id="u1")
        received = []
        with pytest.raises(
            ProviderError, match="the stream failed: RuntimeError: socket went away"
        ) as caught:
            async for delta in stream:
                received.append(delta)
    assert received == ["first "] and caught.value.request_id
    row = (await logged(orch, scope)).row(0, named=True)
    assert row["request_id"] == caught.value.request_id and row["status"] == "error"
    assert row["response"] == "first "


async def test_a_stream_closed_unread_is_logged_abandoned_without_a_call(make_orchestra):
    echo = FunctionConnector("echo")
    orch = make_orchestra({"echo": echo})
    async with orch.run("closed-unread") as scope:
        stream = await orch.process_request_stream("hi", user_id="u1")
        await stream.aclose()
        await stream.aclose()  # once only
    row = (await logged(orch, scope)).row(0, named=True)
    assert (row["status"], row["error_type"]) == ("abandoned", "StreamAbandoned") and echo.calls == 0


async def test_a_stream_collected_unread_is_logged_abandoned(make_orchestra):
    orch = make_orchestra({"echo": FunctionConnector("echo")})
    async with orch.run("collected") as scope:
        stream = await orch.process_request_stream("hi", user_id="u1")
        request_id = stream.request_id
        del stream
        gc.collect()
        for _ in range(20):  # the collection schedules the logging on this loop: no flush needed
            if orch.last_record is not None and orch.last_record.request_id == request_id:
                break
            await asyncio.sleep(0)
        assert orch.last_record is not None and orch.last_record.status == "abandoned"
    table = await logged(orch, scope)
    assert table["request_id"].to_list() == [request_id] and table["status"][0] == "abandoned"


async def test_a_stream_unread_at_flush_is_logged_abandoned_once(make_orchestra):
    orch = make_orchestra({"echo": FunctionConnector("echo")})
    async with orch.run("at-flush") as scope:
        unread = await orch.process_request_stream("one", user_id="u1")
        read = await orch.process_request_stream("two", user_id="u1")
        assert (await read.collect())["response"] == "two"
        await orch.flush()
        with pytest.raises(StreamAbandoned):
            await unread.collect()
        await unread.aclose()
    table = (await logged(orch, scope)).sort("prompt")
    assert table["status"].to_list() == ["abandoned", "ok"]


def test_a_stream_unread_at_close_is_logged(tracking):
    from tests.conftest import scripted_config

    orch = Orchestra(scripted_config("echo"), tracking=tracking)
    orch.model_registry.register_connector("echo", FunctionConnector("echo"))

    async def start() -> object:
        async with orch.run("at-close") as scope:
            stream = await orch.process_request_stream("hi", user_id="u1")
        return stream, scope.run_id

    stream, run_id = asyncio.run(start())
    orch.close()
    assert read_request_table(tracking, run_id)["status"].to_list() == ["abandoned"]
    del stream


# ---- load time ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("answers.txt", b"prompt,model,output\n", r"unsupported format \(use \.parquet, \.csv"),
        ("answers.xlsx", b"PK\x03\x04", "unsupported format"),
        ("answers.parquet", b"prompt,model,output\nhi,m,hello\n", r"could not be read as \.parquet"),
        ("answers.jsonl", b"{not json\n", r"could not be read as \.jsonl"),
        ("answers.csv", b"", r"answers\.csv: (could not be read|the table has no rows)"),
    ],
)
def test_a_dataset_in_another_format_is_a_config_error(tmp_path, name, content, expected):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=expected):
        ReplayDataset.from_path(path)


def test_a_replay_model_missing_from_its_dataset_fails_at_load(tracking):
    config = alpaca_config(rules=[{"providers": ["gpt-5"]}])
    config["models"]["gpt-5"] = {"type": "replay", "dataset": "alpacaeval", "model": "gpt5"}
    with pytest.raises(
        ConfigError, match=r"models\.gpt-5\.model is 'gpt5', which dataset 'alpacaeval' does not"
    ):
        Orchestra(config, tracking=tracking)


def test_every_arm_of_a_sweep_is_validated_before_the_first_runs(tmp_path, empty_store_template):
    from orchestra.sweeps import run_sweep
    from orchestra.tracking.store import MlflowStore
    from tests.test_sweeps import sweep_tracking, write_sweep

    tracking = sweep_tracking(tmp_path, empty_store_template)
    path = write_sweep(
        tmp_path,
        arms=[
            {"name": "fine", "routing.rules": [{"providers": ["gpt-4"]}]},
            {"name": "typo", "routing.default_strategy": "rulez"},
            {"name": "unknown-model", "models.gpt-4.model": "gpt-17"},
            {"name": "bad-value", "consensus.similarity_threshold": 7},
        ],
    )
    with pytest.raises(ConfigError) as caught:
        run_sweep(path, tracking=tracking, progress=False)
    message = str(caught.value)
    assert "3 of 4 arm(s) are invalid, none was run" in message
    assert "typo,seed=0: routing.default_strategy is 'rulez'" in message
    assert "unknown-model,seed=0: models.gpt-4.model is 'gpt-17'" in message
    assert "bad-value,seed=0: config: consensus.similarity_threshold" in message
    assert MlflowStore(tracking).runs("") == []  # nothing started


def test_sweep_arms_validated_with_values_from_the_environment_masked(tmp_path, monkeypatch):
    from orchestra.sweeps import load_sweep

    monkeypatch.setenv("ORCH_SWEEP_TEST_API_KEY", "sk-sweep-" + "k3Yv4L8u" * 4)
    (tmp_path / "config.yaml").write_text(
        yaml.safe_dump({"models": {"a": {"type": "function", "timeout": "${ORCH_SWEEP_TEST_API_KEY}"}}})
    )
    (tmp_path / "sweep.yaml").write_text(
        json.dumps({"name": "s", "config": "config.yaml", "prompts": {"generated": {"template": "x"}}})
    )
    with pytest.raises(ConfigError, match=r"models\.a\.timeout.*\$\{ORCH_SWEEP_TEST_API_KEY\}") as caught:
        load_sweep(tmp_path / "sweep.yaml")
    assert "k3Yv4L8u" not in str(caught.value)


def test_the_shipped_dataset_still_loads(tmp_path):
    assert len(ReplayDataset.from_path(ALPACA, prompt_column="instruction")) > 1000
