"""Plugins from an installed distribution: a test package with a `.dist-info` (entry points
included) is put on the path, then discovered, used from config, listed by `orchestra plugins`,
and its broken entry points are reported and skipped."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from orchestra import ConfigError, Orchestra
from orchestra.app.plugins import GROUPS, format_inventory, inventory
from orchestra.entrypoints import discover

PACKAGE = '''
"""A third-party plugin package: one plugin per orchestra entry-point group."""
from orchestra import ModelResponse
from orchestra.consensus.base import ConsensusOutcome, ConsensusStrategy
from orchestra.metrics import MetricsCollector
from orchestra.providers.base import BaseModelConnector
from orchestra.routing.complexity import ComplexityEvaluator
from orchestra.routing.strategies import Choice, RoutingStrategy
from orchestra.types import ModelProvider, TaskComplexity

OBSERVED = []


class ShoutConnector(BaseModelConnector):
    provider_type = ModelProvider.CUSTOM

    def __init__(self, name, suffix):
        super().__init__(name)
        self.suffix = suffix

    async def generate(self, request):
        text = request.prompt.upper() + self.suffix
        return ModelResponse(content=text, provider=self.name, model_name="shout-1", output_tokens=len(text))

    async def validate_connection(self):
        return True

    def get_supported_models(self):
        return ["shout-1"]


def build_shout(name, settings, context):
    return ShoutConnector(name, settings.params.get("suffix", "!"))


class LongestAnswer(ConsensusStrategy):
    name = "longest"

    async def find_consensus(self, responses, task_context):
        index = max(range(len(responses)), key=lambda i: len(responses[i].content))
        outcome = ConsensusOutcome(
            method="longest", chosen_index=index, chosen_provider=responses[index].provider,
            confidence=1.0, agreement=0.0, providers=[r.provider for r in responses],
        )
        return self.with_outcome(responses[index], outcome)

    def calculate_confidence(self, responses):
        return 1.0


class WordCount(ComplexityEvaluator):
    name = "wordcount"

    async def evaluate(self, prompt):
        return TaskComplexity.COMPLEX if len(prompt.split()) > 5 else TaskComplexity.SIMPLE


class Reverse(RoutingStrategy):
    name = "reverse"

    def choose(self, context):
        ranked = list(reversed(context.candidates))
        chosen = set(ranked[: context.k])
        return Choice(ranked, {p: 1.0 for p in ranked}, {p: float(p in chosen) for p in ranked}, "reversed")


class ListCollector(MetricsCollector):
    async def collect_custom_metric(self, metric_name, value, tags):
        OBSERVED.append((metric_name, value, dict(tags)))


def not_a_strategy():
    return 42
'''

ENTRY_POINTS = """
[orchestra.connectors]
shout = orchestra_example_plugins:build_shout

[orchestra.consensus_strategies]
longest = orchestra_example_plugins:LongestAnswer
wrong_type = orchestra_example_plugins:not_a_strategy

[orchestra.complexity_evaluators]
wordcount = orchestra_example_plugins:WordCount

[orchestra.routers]
reverse = orchestra_example_plugins:Reverse
missing = orchestra_example_plugins_missing_module:Router

[orchestra.metrics_collectors]
observed = orchestra_example_plugins:ListCollector
typo = orchestra_example_plugins:NoSuchCollector
"""


@pytest.fixture
def plugin_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A site directory holding an installed distribution `orchestra-example-plugins` 0.1."""
    site = tmp_path / "site"
    (site / "orchestra_example_plugins").mkdir(parents=True)
    (site / "orchestra_example_plugins" / "__init__.py").write_text(PACKAGE)
    info = site / "orchestra_example_plugins-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: orchestra-example-plugins\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(site))
    yield site
    for module in [m for m in sys.modules if m.startswith("orchestra_example_plugins")]:
        del sys.modules[module]


def test_discover_loads_good_plugins_and_reports_broken_ones(plugin_site: Path) -> None:
    from orchestra.consensus.base import ConsensusStrategy
    from orchestra.routing.strategies import RoutingStrategy

    strategies, errors = discover(GROUPS["consensus"], ConsensusStrategy)
    assert list(strategies) == ["longest"]
    assert [(e.name, e.error.split(":")[0]) for e in errors] == [("wrong_type", "TypeError")]
    assert "gave int, not a ConsensusStrategy" in errors[0].error

    routers, errors = discover(GROUPS["routers"], RoutingStrategy)
    assert list(routers) == ["reverse"]
    assert errors[0].name == "missing" and errors[0].error.startswith("ModuleNotFoundError")


def test_orchestra_uses_every_kind_of_plugin_from_config(plugin_site: Path, tracking) -> None:
    config = {
        "framework": {"metrics_collectors": ["observed"]},
        "models": {
            "loud": {"plugin": "shout", "params": {"suffix": "!!"}},
            "quiet": {"plugin": "shout", "params": {"suffix": "."}},
        },
        "routing": {
            "default_strategy": "reverse",
            "rules": [{"providers": ["loud", "quiet"]}],
            "evaluators": {"general": {"type": "wordcount"}},
            "require_consensus_for_complex": True,
        },
        "consensus": {"default_strategy": "longest"},
    }
    orch = Orchestra(config, tracking=tracking)
    try:
        simple = orch.process_request_sync("say hi")
        assert simple["response"] == "SAY HI."  # the reverse router put "quiet" first
        assert simple["metadata"]["complexity"] == "simple"

        complex_prompt = "please compare these two rather long options for me"
        both = orch.process_request_sync(complex_prompt)
        assert both["metadata"]["complexity"] == "complex"
        assert sorted(both["metadata"]["providers_used"]) == ["loud", "quiet"]
        assert both["response"] == complex_prompt.upper() + "!!"  # the longest answer
        assert both["metadata"]["consensus_method"] == "longest"

        import orchestra_example_plugins

        names = {name for name, _, _ in orchestra_example_plugins.OBSERVED}
        assert {"request_latency_ms", "request_success", "provider_latency_ms"} <= names
        successes = [v for n, v, t in orchestra_example_plugins.OBSERVED if n == "request_success"]
        assert successes == [1.0, 1.0]
        assert orch.consensus_manager.plugin_errors[0].name == "wrong_type"
        assert orch.task_router.plugin_errors[0].name == "missing"
    finally:
        orch.close()


def test_config_naming_a_missing_or_broken_plugin_is_a_clear_config_error(
    plugin_site: Path, tracking
) -> None:
    with pytest.raises(ConfigError, match=r"models.x.plugin is 'nope'; connector plugins: shout"):
        Orchestra({"models": {"x": {"plugin": "nope"}}}, tracking=tracking)
    with pytest.raises(ConfigError, match=r"plugin 'typo' is broken: AttributeError"):
        Orchestra({"framework": {"metrics_collectors": ["typo"]}}, tracking=tracking)
    with pytest.raises(ConfigError, match=r"or name an installed connector plugin"):
        Orchestra({"models": {"x": {"type": "custom"}}}, tracking=tracking)


def test_inventory_lists_every_group_with_status(plugin_site: Path) -> None:
    rows = {(row.group, row.name): row for row in inventory()}
    assert rows[(GROUPS["connectors"], "shout")].ok
    assert rows[(GROUPS["connectors"], "shout")].distribution == "orchestra-example-plugins"
    assert not rows[(GROUPS["routers"], "missing")].ok
    assert rows[(GROUPS["metrics"], "prometheus")].ok  # orchestra's own shipped example
    text = format_inventory(list(rows.values()))
    assert "reverse" in text and "BROKEN, skipped: ModuleNotFoundError" in text


def test_orchestra_plugins_command_in_a_fresh_interpreter(plugin_site: Path) -> None:
    environment = {**os.environ, "PYTHONPATH": str(plugin_site), "MLFLOW_DISABLE_TELEMETRY": "true"}
    result = subprocess.run(
        [sys.executable, "-m", "orchestra", "plugins"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    listing = result.stdout
    assert "shout" in listing and "orchestra_example_plugins:build_shout" in listing
    assert "longest" in listing and "wordcount" in listing and "observed" in listing
    for broken in ("wrong_type", "missing", "typo"):
        line = next(line for line in listing.splitlines() if line.strip().startswith(broken))
        assert "BROKEN, skipped" in line
    assert textwrap.dedent(listing).count("[orchestra-example-plugins]") == 8
