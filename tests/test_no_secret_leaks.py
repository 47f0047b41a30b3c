"""After a run that puts a registered key (given as ${VAR} in the config) into prompts, answers,
provider error messages, tags, run params, the CLI's configs and a tracking URI's password, no
8-character piece of it is found in CLI output, logs (records and a log file), MLflow params and
tags, error messages, the store, the spool or the artifacts.

The key has no recognisable format (no `sk-`): only its registration masks it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import polars as pl
import pytest
import yaml

from orchestra import InsufficientResponses, Orchestra, OrchestraError
from orchestra.app.cli import main as cli_main
from orchestra.redact import FRAGMENT_LENGTH
from orchestra.testing import FakeOpenAI, Fault
from orchestra.tracking.reader import read_request_table

KEY = "lk-7fQ2xW9mZ4vB8nK3pR6tY1uH5jD0sL2aG8cE4oI9"
VARIABLE = "ORCH_LEAK_TEST_API_KEY"


def pieces(key: str = KEY) -> list[str]:
    return [key[i : i + FRAGMENT_LENGTH] for i in range(len(key) - FRAGMENT_LENGTH + 1)]


def leaks(text: str) -> list[str]:
    return [piece for piece in pieces() if piece in text]


class QuotesTheKeyItRefuses(FakeOpenAI):
    """Answers a wrong key with 401 quoting it, as OpenAI's API does ("Incorrect API key provided")."""

    def _check_auth(self, request):
        sent = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if sent == self.api_key:
            return None
        return self._error_response(401, f"Incorrect API key provided: {sent}.")


@pytest.fixture(scope="module")
def servers():
    answering = FakeOpenAI(api_key=KEY, reply=lambda prompt: f"{prompt} -- and the key is {KEY}").start()
    refusing = QuotesTheKeyItRefuses(api_key="another-key-entirely").start()
    yield answering, refusing
    answering.stop()
    refusing.stop()


def config(answering: FakeOpenAI, refusing: FakeOpenAI | None = None) -> dict:
    models = {
        "openai": {
            "model": "gpt-4o-mini",
            "api_key": "${" + VARIABLE + "}",
            "base_url": answering.base_url,
            "timeout": 10,
        }
    }
    if refusing is not None:
        models["gateway"] = {
            "type": "openai_compatible",
            "model": "gpt-4o-mini",
            "api_key_env": VARIABLE,
            "base_url": refusing.base_url,
        }
    return {
        "models": models,
        "routing": {"rules": [{"providers": ["openai"]}]},
        "performance": {"retry": {"initial_delay_s": 0.001, "max_delay_s": 0.01}},
    }


@pytest.fixture
def leaky_run(servers, tracking, tmp_path, monkeypatch, caplog, capsys):
    """Runs requests that carry the key everywhere; returns what was printed, logged and raised."""
    answering, refusing = servers
    answering.reset()
    monkeypatch.setenv(VARIABLE, KEY)
    log_file = tmp_path / "orchestra.log"
    file_handler = logging.FileHandler(log_file)
    root = logging.getLogger()
    root.addHandler(file_handler)
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="orchestra")
    raised: list[BaseException] = []

    async def run() -> str:
        orch = Orchestra(config(answering), tracking=tracking)
        try:
            async with orch.run("leaky", params={"copied_key": KEY}, tags={"owner": KEY[-12:]}) as scope:
                await orch.process_request(f"my key is {KEY}, keep it", user_id="u1", tags={"note": KEY[:16]})
                answering.inject(Fault.status(500, body={"error": {"message": f"upstream rejected {KEY}"}}))
                await orch.process_request("retried once", user_id="u1")
                answering.inject(Fault.status(400, body={"error": {"message": f"bad key {KEY[:20]}"}}))
                try:
                    await orch.process_request("refused", user_id="u1")
                except InsufficientResponses as err:
                    raised.append(err)
                stream = await orch.process_request_stream(f"stream {KEY[5:30]}", user_id="u1")
                await stream.collect()
            await orch.flush()
            return scope.run_id
        finally:
            await orch.aclose()

    try:
        run_id = asyncio.run(run())
    finally:
        root.removeHandler(file_handler)
        file_handler.close()
    good = tmp_path / "config.yaml"
    good.write_text(yaml.safe_dump(config(answering, refusing)))
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**config(answering), "routing": {"rules": [{"providers": ["nope"]}]}}))
    codes = [cli_main(["check", "--config", str(good)]), cli_main(["check", "--config", str(bad)])]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"postgresql://orchestra:{KEY}@127.0.0.1:9/runs")
    codes.append(cli_main(["ui", "--print"]))  # prints the `mlflow server` command for that store
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    logged = (
        "\n".join(record.getMessage() + (record.exc_text or "") for record in caplog.records)
        + log_file.read_text()
    )
    printed = capsys.readouterr()
    return {
        "run_id": run_id,
        "codes": codes,
        "printed": printed.out + printed.err,
        "logged": logged,
        "raised": raised,
        "tracking": tracking,
    }


def test_no_piece_of_the_key_in_cli_output_logs_errors_params_and_tags(leaky_run, client):
    printed = leaky_run["printed"]
    assert leaky_run["codes"] == [1, 2, 0]  # the gateway refused the key; the bad config was refused
    assert "Incorrect API key provided" in printed and "routing.rules.0.providers names" in printed
    assert "MLFLOW_BACKEND_STORE_URI='postgresql://orchestra:***@127.0.0.1:9/runs'" in printed
    assert leaks(printed) == []
    assert "request" in leaky_run["logged"] and leaks(leaky_run["logged"]) == []
    assert leaky_run["raised"] and leaks(" ".join(map(str, leaky_run["raised"]))) == []
    for run in client.search_runs([client.get_experiment_by_name("tests").experiment_id]):
        assert leaks(json.dumps(run.data.params) + json.dumps(run.data.tags)) == []
    table = read_request_table(leaky_run["tracking"], leaky_run["run_id"])
    assert table.height == 4
    errors = [message for message in table["error_message"].to_list() if message]
    for calls in table["calls_json"].to_list():  # the calls' errors (their answers are ingest's)
        for call in json.loads(calls):
            errors.append(call.get("error_message") or "")
            errors += [retried["message"] for retried in call["retried_errors"]]
    assert any("upstream rejected [REDACTED]" in e for e in errors)
    assert leaks(" ".join(errors)) == []


def store_text(tracking) -> str:
    """Everything the store, the artifacts and the spool hold, as text (parquet decoded)."""
    texts = []
    folders = [Path(tracking.artifact_location), Path(tracking.spool_dir), Path(tracking.sqlite_path).parent]
    for folder in folders:
        for path in folder.rglob("*") if folder.exists() else []:
            if not path.is_file():
                continue
            if path.suffix == ".parquet":
                frame = pl.read_parquet(path)
                texts.append(json.dumps(frame.to_dicts(), default=str))
            else:
                texts.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(texts)


def test_no_piece_of_the_key_in_the_store_spool_or_artifacts(leaky_run):
    text = store_text(leaky_run["tracking"])
    assert "retried once" in text  # the store was read
    assert leaks(text) == []


def test_the_key_in_an_error_message_is_masked_even_before_it_is_logged():
    from orchestra.redact import SECRETS

    SECRETS.register(KEY)
    assert leaks(str(OrchestraError(f"echoed {KEY[3:40]}"))) == []
