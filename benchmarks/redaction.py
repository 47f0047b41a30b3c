"""How long masking secrets takes on a logged request's text, against the straightforward ways.

Every logged prompt, answer, error and tag goes through `SECRETS.redact`, so it must be cheap.
Texts are real AlpacaEval answers cut to ~1 kB and ~10 kB; four keys are registered (an
OpenAI project key, an Anthropic key, a Google key and a 40-character token). Three
implementations run side by side on the same texts:

- naive_exact: the previous implementation: `value in text` / `replace` for each secret, then
  five regular expressions over the whole text; it masks whole secrets only, not fragments.
- naive_fragments: the obvious way to mask fragments: for each secret, `in` for every one of
  its 8-character windows, then the same regular expressions.
- orchestra: `SecretRegistry.redact` (one Aho-Corasick pass; detectors run at their anchors).

Each is timed on clean texts and on texts holding a 12-character fragment of a key; the leak
check counts fragments still present after masking.

    .venv/bin/python benchmarks/redaction.py [--repeat 2000]
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import string
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl

from orchestra.redact import MASK, SecretRegistry

DATA = Path(__file__).resolve().parents[1] / "data" / "alpacaeval" / "responses.parquet"
OLD_PATTERNS = [
    re.compile(r"sk-ant-[A-Za-z0-9_\-]{8,}"),
    re.compile(r"sk-[A-Za-z0-9_\-]{16,}"),
    re.compile(r"AIza[0-9A-Za-z_\-]{20,}"),
    re.compile(r"(?i)(?<=bearer )[A-Za-z0-9._\-]{16,}"),
    re.compile(r"(?i)(?<=api[_-]key=)[A-Za-z0-9._\-]{8,}"),
]


def make_keys(rng: random.Random) -> list[str]:
    def draw(alphabet: str, n: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(n))

    alnum = string.ascii_letters + string.digits
    return [
        "sk-proj-" + draw(alnum + "_-", 156),
        "sk-ant-api03-" + draw(alnum + "_-", 95) + "AA",
        "AIza" + draw(alnum + "_-", 35),
        draw(alnum, 40),
    ]


def naive_exact(values: list[str]) -> Callable[[str], str]:
    ordered = sorted(values, key=len, reverse=True)

    def redact(text: str) -> str:
        for value in ordered:
            if value in text:
                text = text.replace(value, MASK)
        for pattern in OLD_PATTERNS:
            text = pattern.sub(MASK, text)
        return text

    return redact


def naive_fragments(values: list[str]) -> Callable[[str], str]:
    grams = sorted({v[i : i + 8] for v in values for i in range(len(v) - 7)})

    def redact(text: str) -> str:
        for gram in grams:
            if gram in text:
                text = text.replace(gram, MASK)
        for pattern in OLD_PATTERNS:
            text = pattern.sub(MASK, text)
        return text

    return redact


def texts(size: int, count: int) -> list[str]:
    outputs = pl.read_parquet(DATA, columns=["output"])["output"].to_list()
    joined, found, start = [], [], 0
    while len(found) < count:
        joined.append(outputs[start % len(outputs)])
        start += 1
        if sum(map(len, joined)) >= size:
            found.append("\n".join(joined)[:size])
            joined = []
    return found


def with_fragments(samples: list[str], keys: list[str], rng: random.Random) -> tuple[list[str], list[str]]:
    planted, fragments = [], []
    for text in samples:
        key = rng.choice(keys)
        at = rng.randrange(len(key) - 12)
        fragment = key[at : at + 12]
        middle = len(text) // 2
        planted.append(f"{text[:middle]} {fragment} {text[middle:]}")
        fragments.append(fragment)
    return planted, fragments


def time_per_call(redact: Callable[[str], str], samples: list[str], repeat: int) -> float:
    """Median over rounds of the mean microseconds per call (each round: every sample once)."""
    rounds = []
    for _ in range(max(5, repeat // len(samples))):
        started = time.perf_counter()
        for text in samples:
            redact(text)
        rounds.append((time.perf_counter() - started) / len(samples) * 1e6)
    return statistics.median(rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()
    rng = random.Random(0)
    keys = make_keys(rng)
    registry = SecretRegistry()
    for key in keys:
        registry.register(key)
    implementations = {
        "naive_exact": naive_exact(keys),
        "naive_fragments": naive_fragments(keys),
        "orchestra": registry.redact,
    }
    results: dict[tuple[str, str], float] = {}
    for label, size in (("1kb", 1_000), ("10kb", 10_000)):
        clean = texts(size, 20)
        planted, fragments = with_fragments(clean, keys, rng)
        for name, redact in implementations.items():
            results[(name, label)] = time_per_call(redact, clean, args.repeat)
            results[(name, label + "_with_fragment")] = time_per_call(redact, planted, args.repeat)
            leaked = sum(fragment in redact(text) for text, fragment in zip(planted, fragments, strict=True))
            results[(name, label + "_leaked")] = leaked
            print(
                f"{name:>16} {label:>4}: {results[(name, label)]:8.1f} us clean, "
                f"{results[(name, label + '_with_fragment')]:8.1f} us with a fragment, "
                f"{leaked}/{len(planted)} fragments leaked"
            )
    for label in ("1kb", "10kb"):
        print(f"RESULT redact_{label}_us {results[('orchestra', label)]:.1f}")
        with_fragment = results[("orchestra", label + "_with_fragment")]
        print(f"RESULT redact_{label}_with_fragment_us {with_fragment:.1f}")
        print(f"RESULT naive_exact_{label}_us {results[('naive_exact', label)]:.1f}")
        print(f"RESULT naive_fragments_{label}_us {results[('naive_fragments', label)]:.1f}")
    speedup = results[("naive_fragments", "10kb")] / results[("orchestra", "10kb")]
    print(f"RESULT speedup_vs_naive_fragments_10kb {speedup:.1f}")
    for name in implementations:
        leaked = results[(name, "1kb_leaked")] + results[(name, "10kb_leaked")]
        print(f"RESULT leaked_fragments_{name} {leaked:.0f}")


if __name__ == "__main__":
    main()
