"""Secret masking: registered keys and every 8-character piece of them, key formats, URL
passwords, log records with tracebacks, and the CLI's output streams."""

from __future__ import annotations

import io
import logging

import pytest

from orchestra.redact import (
    FRAGMENT_LENGTH,
    MASK,
    SECRETS,
    RedactingFilter,
    RedactingWriter,
    SecretRegistry,
)

KEY = "sk-proj-Zq3xT7vK2mNw9pLr4sHd8bYc6fJg1aEu5oWi0nQt"


@pytest.fixture
def registry() -> SecretRegistry:
    secrets = SecretRegistry()
    secrets.register(KEY)
    return secrets


@pytest.mark.parametrize(
    "piece",
    [
        KEY,
        KEY[:14],
        KEY[:20],
        KEY[-12:],
        KEY[10 : 10 + FRAGMENT_LENGTH],
        KEY[-FRAGMENT_LENGTH:],
        KEY[:FRAGMENT_LENGTH],
    ],
    ids=["whole", "first-14", "first-20", "last-12", "middle-8", "last-8", "first-8"],
)
def test_every_piece_of_8_or_more_characters_is_masked(registry, piece):
    redacted = registry.redact(f"the server said: {piece}. Retry later.")
    assert redacted == f"the server said: {MASK}. Retry later."
    for start in range(len(KEY) - FRAGMENT_LENGTH + 1):
        assert KEY[start : start + FRAGMENT_LENGTH] not in redacted


def test_pieces_shorter_than_8_characters_stay(registry):
    piece = KEY[20:27]
    assert registry.redact(f"x {piece} y") == f"x {piece} y"


def test_a_piece_inside_a_word_is_cut_out_and_the_rest_kept(registry):
    assert registry.redact(f"prefix{KEY[5:25]}!tail") == f"prefix{MASK}!tail"


def test_two_keys_and_overlapping_pieces_give_one_mask_each():
    secrets = SecretRegistry(patterns=False)
    other = "Yh8Rt2Vn6Lp0Xc4Bz"
    secrets.register(KEY)
    secrets.register(other)
    text = f"a {KEY[3:30]}{KEY[25:40]} b {other} c"  # the two pieces of KEY overlap
    assert secrets.redact(text) == f"a {MASK} b {MASK} c"


def test_key_formats_are_detected_by_default_and_can_be_switched_off():
    secrets = SecretRegistry()
    openai = "sk-proj-" + "A1b2C3d4" * 6
    anthropic = "sk-ant-api03-" + "x9Y8z7W6" * 5
    google = "AIzaSyD" + "k4L5m6N7p8" * 3 + "Qr"
    aws = "AKIA" + "IOSFODNN7EXAMPLE"
    text = f"o {openai} a {anthropic} g {google} w {aws} end"
    assert secrets.redact(text) == f"o {MASK} a {MASK} g {MASK} w {MASK} end"
    secrets.use_patterns(False)
    assert secrets.redact(text) == text
    secrets.use_patterns(True)
    assert secrets.redact(text).count(MASK) == 4


def test_detectors_leave_ordinary_words_alone():
    secrets = SecretRegistry()
    text = "multitask-learning-approaches for scikit-learn; AKIAB is short; bearer of news"
    assert secrets.redact(text) == text


def test_url_passwords_are_masked_even_with_patterns_off():
    secrets = SecretRegistry(patterns=False)
    redacted = secrets.redact("store postgresql://orchestra:hunter2-s3cret@db:5432/runs is down")
    assert redacted == "store postgresql://orchestra:***@db:5432/runs is down"  # as `masked_uri` shows it


def test_text_with_lone_surrogates_is_searched_too(registry):
    assert registry.redact(f"user \udce9 sent {KEY[4:20]}") == f"user \udce9 sent {MASK}"


def test_registering_short_or_empty_values_does_nothing():
    secrets = SecretRegistry(patterns=False)
    for value in (None, "", "short"):
        secrets.register(value)
    assert secrets.redact("short words stay short") == "short words stay short"


def test_log_records_are_masked_in_message_arguments_and_traceback():
    SECRETS.register(KEY)
    logger = logging.getLogger("tests.redaction")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    logger.addHandler(handler)
    try:
        try:
            raise RuntimeError(f"the provider echoed {KEY}")
        except RuntimeError:
            logger.exception("call failed with key %s", KEY[:16])
    finally:
        logger.removeHandler(handler)
    logged = stream.getvalue()
    assert "RuntimeError" in logged and MASK in logged
    assert KEY[:FRAGMENT_LENGTH] not in logged and KEY[-FRAGMENT_LENGTH:] not in logged


def test_the_writer_masks_a_key_split_over_two_writes_of_one_line():
    SECRETS.register(KEY)
    target = io.StringIO()
    writer = RedactingWriter(target)
    writer.write(f"key: {KEY[:20]}")
    writer.write(f"{KEY[20:]} done\n")
    writer.write("tail without newline")
    writer.flush()
    assert target.getvalue() == f"key: {MASK} done\ntail without newline"


def test_tracking_redact_patterns_switches_the_detectors():
    from orchestra import Orchestra
    from orchestra.tracking.settings import TrackingSettings

    unregistered = "AKIAZ7Q2W4E6R8T0Y1U3"
    try:
        Orchestra({}, tracking=TrackingSettings(enabled=False, redact_patterns=False)).close()
        assert not SECRETS.patterns and SECRETS.redact(unregistered) == unregistered
    finally:
        Orchestra({}, tracking=TrackingSettings(enabled=False)).close()
    assert SECRETS.patterns and SECRETS.redact(unregistered) == MASK
