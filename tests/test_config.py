"""config.yaml loading: the seed's shape, ${ENV} interpolation, .env files, errors naming keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestra import ConfigError, Orchestra, load_settings
from orchestra.types import ModelProvider, TaskComplexity

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_configs_load():
    offline = load_settings(ROOT / "config.yaml")
    assert offline.models["gpt-4"].type == ModelProvider.REPLAY
    assert offline.models["gpt-4"].default_model == "gpt4"
    assert offline.resolve_path(offline.datasets["alpacaeval"].path).is_file()
    live = load_settings(ROOT / "config.live.yaml")
    assert live.models["openai"].type == ModelProvider.OPENAI  # inferred from the name
    assert live.routing.rules[1].complexity == TaskComplexity.COMPLEX
    google_limits = live.models["google"].rate_limit
    assert google_limits is not None and google_limits.max_concurrent == 25


def test_seed_example_config_validates():
    seed = {
        "framework": {"name": "AI Orchestration Framework", "version": "1.0.0", "enable_metrics": True},
        "models": {"openai": {"default_model": "gpt-4", "max_tokens": 4000, "temperature": 0.7}},
        "routing": {
            "default_strategy": "rules",
            "complexity_threshold": 0.7,
            "require_consensus_for_complex": True,
            "rules": [{"task_type": "code_generation", "complexity": "simple", "providers": ["openai"]}],
        },
        "consensus": {
            "default_strategy": "lexical",
            "similarity_threshold": 0.8,
            "confidence_threshold": 0.7,
        },
        "improvement": {
            "enable": True,
            "analysis_interval": 24,
            "auto_apply_threshold": 0.9,
            "min_data_points": 100,
        },
        "performance": {"max_concurrent_requests": 50, "enable_response_caching": True, "cache_ttl": 3600},
    }
    settings = load_settings(seed)
    assert settings.routing.rules[0].matches("code_generation", TaskComplexity.SIMPLE)
    assert not settings.routing.rules[0].matches("code_generation", TaskComplexity.COMPLEX)


def test_old_spellings_are_rewritten_with_a_deprecation_warning():
    old = {
        "framework": {"enable_caching": True},
        "models": {"a": {"type": "function"}, "b": {"type": "function", "rate_limit": {"max_concurrent": 2}}},
        "routing": {"rules": [{"task_type": "*", "providers": ["a"]}]},
        "consensus": {"strategies": {"voting": {"weight_by_confidence": True}}},
        "performance": {
            "connection_pool_size": 10,
            "models": {"a": {"timeout": 5, "max_concurrent": 3}, "b": {"max_concurrent": 9}},
        },
        "improvement": {"enable": True, "analysis_interval": 12},  # the interval now sets --schedule
    }
    with pytest.warns(DeprecationWarning) as caught:
        settings = load_settings(old)
    said = " ".join(str(warning.message) for warning in caught)
    for spelling in (
        "framework.enable_caching",
        "performance.models.a.timeout",
        "performance.models.a.max_concurrent",
        "weight_by_confidence",
        'task_type: "*"',
        "performance.connection_pool_size",
        "improvement.enable",
    ):
        assert spelling in said
    assert "analysis_interval is deprecated" not in said and settings.improvement.analysis_interval == 12
    assert settings.performance.enable_response_caching
    a, b = settings.models["a"], settings.models["b"]
    assert a.timeout == 5 and a.rate_limit is not None and a.rate_limit.max_concurrent == 3
    assert b.rate_limit is not None and b.rate_limit.max_concurrent == 2  # the current spelling wins
    assert settings.routing.rules[0].task_type == "any"
    assert settings.consensus.strategies["voting"]["weight_by"] == "confidence"
    assert old["framework"] == {"enable_caching": True}  # the caller's dict is left alone
    with pytest.raises(ConfigError, match=r"performance\.models\.ghost names no provider under models"):
        load_settings({"performance": {"models": {"ghost": {"timeout": 1}}}})


def test_env_interpolation_and_dotenv(tmp_path, monkeypatch):
    monkeypatch.delenv("ORCH_TEST_URL", raising=False)
    monkeypatch.delenv("ORCH_TEST_TIMEOUT", raising=False)
    (tmp_path / ".env").write_text("ORCH_TEST_URL=http://127.0.0.1:9/v1\n")
    (tmp_path / "config.yaml").write_text(
        "models:\n  local:\n    type: openai_compatible\n    base_url: ${ORCH_TEST_URL}\n"
        "    timeout: ${ORCH_TEST_TIMEOUT:-12.5}\n"
    )
    settings = load_settings(tmp_path / "config.yaml")
    assert settings.models["local"].base_url == "http://127.0.0.1:9/v1"
    assert settings.models["local"].timeout == 12.5


def test_unset_variable_names_the_key_and_the_variable(monkeypatch):
    monkeypatch.delenv("ORCH_MISSING", raising=False)
    with pytest.raises(ConfigError, match=r"models\.local\.base_url.*ORCH_MISSING"):
        load_settings({"models": {"local": {"type": "openai_compatible", "base_url": "${ORCH_MISSING}"}}})


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"routng": {}}, r"routng: unknown key \(allowed here: consensus, datasets, experiments, framework"),
        (
            {"routing": {"rules": [{"providers": ["a"], "complexity": "hard"}]}},
            r"routing\.rules\.0\.complexity.*'simple'.*'hard'",
        ),
        (
            {"models": {"a": {"type": "replay", "modle": "x"}}},
            r"models\.a\.modle: unknown key \(allowed here: .*dataset",
        ),
        ({"models": {"mystery": {}}}, r"models\.mystery\.type is required"),
        (
            {"routing": {"complexity_threshold": 1.5}},
            r"routing\.complexity_threshold.*less than or equal to 1",
        ),
        (
            {"models": {"a": {"type": "function"}}, "routing": {"rules": [{"providers": ["b"]}]}},
            r"routing\.rules\.0\.providers names \['b'\]",
        ),
        (
            {"models": {"r": {"type": "replay", "dataset": "nope", "model": "m"}}},
            r"models\.r\.dataset is 'nope'",
        ),
    ],
)
def test_bad_config_errors_name_the_key(config, expected):
    with pytest.raises(ConfigError, match=expected):
        load_settings(config)


def test_bad_yaml_and_missing_file(tmp_path):
    (tmp_path / "bad.yaml").write_text("routing: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "absent.yaml")


def test_unknown_strategy_names_the_available_ones(tracking):
    with pytest.raises(
        ConfigError,
        match=r"routing\.default_strategy is 'magic'; available: cascade, cost_aware, learned, performance",
    ):
        Orchestra({"routing": {"default_strategy": "magic"}}, tracking=tracking)
    with pytest.raises(
        ConfigError,
        match=r"default_strategy is 'telepathy'; available strategies: confidence, execution, lexical, simil",
    ):
        Orchestra({"consensus": {"default_strategy": "telepathy"}}, tracking=tracking)


def test_provider_types_not_buildable_from_config_say_how_to_register(tracking):
    with pytest.raises(ConfigError, match="register a connector in code"):
        Orchestra({"models": {"custom": {"type": "custom"}}}, tracking=tracking)


def test_settings_params_never_include_api_keys():
    from orchestra.tracking.params import settings_params

    settings = load_settings(
        {"models": {"openai": {"model": "gpt-4o", "api_key": "sk-abcdefghijklmnopqrstuvwx"}}}
    )
    params = settings_params(settings)
    assert params["models.openai.default_model"] == "gpt-4o"
    assert not any("sk-abc" in value for value in params.values())
    assert not any(key.rsplit(".", 1)[-1] == "api_key" for key in params)
