"""Reports from analysis results: Markdown and HTML, rendered from Jinja2 templates.

render_report([summary_result, sentiment_result], "html", title="Q3 report")

HTML is autoescaped (document passages are untrusted text); Markdown is not escaped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from jinja2 import DictLoader, Environment, StrictUndefined, select_autoescape

from orchestra.errors import InvalidRequest

if TYPE_CHECKING:
    from orchestra.applications.documents.agent import AnalysisResult

REPORT_TYPES = ("markdown", "html")

_MARKDOWN = """# {{ title }}

_Generated {{ generated }} from {{ results | length }} analysis result(s)._
{% for r in results %}
## {{ r.analysis_type | replace("_", " ") | title }}

{% if r.analysis_type == "summary" -%}
{{ r.result.summary }}
{%- elif r.analysis_type == "key_points" -%}
{% for point in r.result.points %}- {{ point }}
{% endfor %}
{%- elif r.analysis_type == "sentiment" -%}
**{{ r.result.label }}** (score {{ "%+.2f" | format(r.result.score) }} on -1 ... +1)
{%- elif r.analysis_type == "compliance" -%}
{% if r.result.findings %}| severity | rule | passage |
|---|---|---|
{% for f in r.result.findings %}| {{ f.severity }} | {{ f.rule | cell }} | "{{ f.passage | cell }}" |
{% endfor %}{% else %}No findings.{% endif %}
{%- endif %}

_{{ r.chunks }} chunk(s); confidence {{ r.confidence | two_places }};
answered by {{ r.providers | join(", ") }}._
{% endfor %}"""

_HTML = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body { font-family: sans-serif; max-width: 50em; margin: 2em auto; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: .3em .6em; }
.critical, .high { color: #b00020; } .meta { color: #666; font-size: .9em; }
</style></head>
<body>
<h1>{{ title }}</h1>
<p class="meta">Generated {{ generated }} from {{ results | length }} analysis result(s).</p>
{% for r in results %}
<section id="{{ r.analysis_type }}">
<h2>{{ r.analysis_type | replace("_", " ") | title }}</h2>
{% if r.analysis_type == "summary" %}<p>{{ r.result.summary }}</p>
{% elif r.analysis_type == "key_points" %}<ul>
{% for point in r.result.points %}<li>{{ point }}</li>{% endfor %}</ul>
{% elif r.analysis_type == "sentiment" %}<p><strong>{{ r.result.label }}</strong>
(score {{ "%+.2f" | format(r.result.score) }} on -1 ... +1)</p>
{% elif r.analysis_type == "compliance" %}{% if r.result.findings %}
<table><tr><th>severity</th><th>rule</th><th>passage</th><th>why</th></tr>
{% for f in r.result.findings %}<tr class="{{ f.severity }}"><td>{{ f.severity }}</td><td>{{ f.rule }}</td>
<td><q>{{ f.passage }}</q></td><td>{{ f.explanation }}</td></tr>
{% endfor %}</table>{% else %}<p>No findings.</p>{% endif %}
{% endif %}
<p class="meta">{{ r.chunks }} chunk(s); confidence {{ r.confidence | two_places }};
answered by {{ r.providers | join(", ") }}.</p>
</section>
{% endfor %}
</body>
</html>
"""

_ENVIRONMENT = Environment(
    loader=DictLoader({"report.md": _MARKDOWN, "report.html": _HTML}),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)
_ENVIRONMENT.filters["cell"] = lambda text: " ".join(str(text).split()).replace("|", "\\|")
_ENVIRONMENT.filters["two_places"] = lambda value: "n/a" if value is None else f"{value:.2f}"


def render_report(
    data: AnalysisResult | Sequence[AnalysisResult] | Mapping[str, AnalysisResult],
    report_type: str = "markdown",
    *,
    title: str = "Document analysis",
    generated: datetime | None = None,
) -> str:
    """The report as Markdown or HTML text."""
    from orchestra.applications.documents.agent import AnalysisResult

    if report_type not in REPORT_TYPES:
        raise InvalidRequest(f"unknown report_type {report_type!r}; allowed: {', '.join(REPORT_TYPES)}")
    if isinstance(data, AnalysisResult):
        results = [data]
    elif isinstance(data, Mapping):
        results = list(data.values())
    else:
        results = list(data)
    if not results or not all(isinstance(r, AnalysisResult) for r in results):
        raise InvalidRequest("a report needs one or more AnalysisResult objects (from analyze_document)")
    template = _ENVIRONMENT.get_template("report.md" if report_type == "markdown" else "report.html")
    stamp = (generated or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    return template.render(title=title, generated=stamp, results=results)
