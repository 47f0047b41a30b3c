"""Config mistakes are named without printing keys: interpolated values and key fields are
masked, sections are never dumped, YAML errors do not quote the file; files that are not UTF-8
and duplicate YAML keys are errors (config.yaml, mlflow.yaml and sweep files)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from orchestra import ConfigError, load_settings
from orchestra.redact import FRAGMENT_LENGTH
from orchestra.tracking.settings import load_tracking_settings

ROOT = Path(__file__).resolve().parents[1]
KEY = "sk-proj-Cfg4Kx9Lm2Nq7Rt5Vw8Yz3Ab6De1Gh0Jk"


def assert_no_piece_of(key: str, text: str) -> None:
    for start in range(len(key) - FRAGMENT_LENGTH + 1):
        assert key[start : start + FRAGMENT_LENGTH] not in text, f"{key[start : start + 8]!r} leaked"


@pytest.fixture
def key_in_environment(monkeypatch) -> str:
    monkeypatch.setenv("ORCH_CFG_TEST_OPENAI_API_KEY", KEY)
    return "${ORCH_CFG_TEST_OPENAI_API_KEY}"


def test_an_unknown_provider_in_a_rule_does_not_print_the_interpolated_config(key_in_environment):
    config = {
        "models": {"openai": {"model": "gpt-4o", "api_key": key_in_environment}},
        "routing": {"rules": [{"providers": ["opneai"]}]},
    }
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    message = str(caught.value)
    assert "routing.rules.0.providers names ['opneai']" in message
    assert_no_piece_of(KEY, message)
    assert_no_piece_of(KEY, repr(caught.value.__cause__) + repr(caught.value.__context__))


def test_a_bad_value_from_the_environment_is_named_not_shown(key_in_environment):
    config = {"models": {"local": {"type": "openai_compatible", "timeout": key_in_environment}}}
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    message = str(caught.value)
    assert "models.local.timeout" in message and "${ORCH_CFG_TEST_OPENAI_API_KEY}" in message
    assert_no_piece_of(KEY, message)


def test_a_key_field_of_the_wrong_type_is_not_shown():
    with pytest.raises(ConfigError, match=r"models\.openai\.api_key: .*not shown for a key field") as caught:
        load_settings({"models": {"openai": {"api_key": 12345678901234567890}}})
    assert "12345678" not in str(caught.value)


def test_a_section_of_the_wrong_type_is_described_not_dumped():
    with pytest.raises(ConfigError, match=r"models\.openai: .*got a list of 1 item") as caught:
        load_settings({"models": {"openai": [{"api_key": KEY}]}})
    assert_no_piece_of(KEY, str(caught.value))


def test_plain_bad_values_are_still_shown():
    with pytest.raises(ConfigError, match=r"performance\.request_timeout: .*got 'soon'"):
        load_settings({"performance": {"request_timeout": "soon"}})


def test_yaml_errors_name_the_line_without_quoting_it(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(f"models:\n  openai:\n    api_key: {KEY}: oops\n")
    with pytest.raises(ConfigError, match=r"not valid YAML: line 3, column \d+") as caught:
        load_settings(path)
    assert_no_piece_of(KEY, str(caught.value))


def test_a_config_that_is_not_utf8_is_an_error_naming_the_place(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_bytes("framework:\n  name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(byte 0xe9 at line 2, column 12\)"):
        load_settings(path)


def test_duplicate_keys_in_config_yaml_are_an_error(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("routing:\n  default_strategy: rules\nmodels: {}\nrouting:\n  default_strategy: random\n")
    with pytest.raises(ConfigError, match=r"line 4, column 1: duplicate key 'routing' \(first at line 1\)"):
        load_settings(path)
    nested = tmp_path / "nested.yaml"
    nested.write_text("performance:\n  request_timeout: 5\n  request_timeout: 50\n")
    with pytest.raises(ConfigError, match="duplicate key 'request_timeout'"):
        load_settings(nested)


def test_duplicate_keys_in_mlflow_yaml_are_an_error(tmp_path):
    path = tmp_path / "mlflow.yaml"
    path.write_text("tracking_uri: sqlite:///a.db\nexperiment: x\ntracking_uri: sqlite:///b.db\n")
    with pytest.raises(ConfigError, match="duplicate key 'tracking_uri'"):
        load_tracking_settings(path)


def test_duplicate_keys_in_a_sweep_file_are_an_error(tmp_path):
    from orchestra.sweeps import load_sweep

    (tmp_path / "config.yaml").write_text("models: {}\n")
    path = tmp_path / "sweep.yaml"
    path.write_text(
        "name: s\nconfig: config.yaml\nprompts: {generated: {template: 'x'}}\n"
        "grid:\n  routing.default_strategy: [rules]\n  routing.default_strategy: [random]\n"
    )
    with pytest.raises(ConfigError, match=r"duplicate key 'routing\.default_strategy'"):
        load_sweep(path)


def test_the_cli_prints_config_errors_without_the_key(tmp_path, monkeypatch, key_in_environment):
    config = {
        "models": {"openai": {"model": "gpt-4o", "api_key": key_in_environment}},
        "routing": {"rules": [{"providers": ["missing"]}]},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [sys.executable, "-m", "orchestra", "check", "--config", str(tmp_path / "config.yaml")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 2
    assert "routing.rules.0.providers names ['missing']" in result.stderr
    assert_no_piece_of(KEY, result.stdout + result.stderr)
