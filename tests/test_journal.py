"""The journal's parts on their own: sanitising, encoding, isolating refusals, the SQLite journal
and its writer's bound, leases and locks, masked URIs, and the import of the old spool format."""

from __future__ import annotations

import errno
import json
import sqlite3
import threading
from concurrent.futures import Future
from pathlib import Path

import pytest

from orchestra import ConfigError
from orchestra.engine.records import CallRecord, RequestRecord, RetriedError
from orchestra.redact import MASK, SECRETS
from orchestra.tracking.codec import decode_record, encode_record
from orchestra.tracking.dead_letter import DeadLetters
from orchestra.tracking.isolate import is_disk_full, is_refusal, isolate
from orchestra.tracking.journal import DONE, REQUEST, Entry, Journal
from orchestra.tracking.journal_writer import JournalWriter
from orchestra.tracking.lease import FileLease
from orchestra.tracking.outcome import WriterStats
from orchestra.tracking.sanitize import INVALID_TEXT_TAG, REPLACEMENT, storable
from orchestra.tracking.settings import TrackingSettings, load_tracking_settings
from orchestra.tracking.uris import check_scheme, mask_uris_in, masked_uri


def record(request_id: str = "0" * 32, **changes) -> RequestRecord:
    base = RequestRecord(
        request_id=request_id,
        run_key="run-1",
        start_ns=1_700_000_000_000_000_000,
        end_ns=1_700_000_000_001_000_000,
        user_id="alice",
        session_id="s1",
        task_type="qa",
        prompt="What is 2+2?",
        system_prompt="Be brief.",
        response="4",
        routing={"strategy": "rules", "reason": "rule 0", "candidate_scores": {"a": 1.0}},
        calls=[CallRecord("a", "m", 1, 2, True, content="4", attempts=2, cache_hit=True)],
        consensus={"method": "lexical", "providers": ["a"]},
        tags={"team": "x"},
    )
    for key, value in changes.items():
        setattr(base, key, value)
    return base


# ---- sanitising and encoding --------------------------------------------------------------


def test_a_clean_record_round_trips_unchanged():
    original = record()
    assert decode_record(encode_record(original)) == original
    value = {"a": ["b", {"c": 1.5}]}
    assert storable(value) == (value, False) and storable(value)[0] is value  # not even copied


def test_lone_surrogates_and_nul_are_replaced_and_flagged_never_dropped():
    bad = record(
        user_id="u\udce9",
        prompt="caf\udce9 au lait",
        response="nul\x00byte",
        calls=[CallRecord("a", "m", 1, 2, False, error_message="bad \ud800 bytes")],
        routing={"reason\udc80": "key too"},
    )
    payload = encode_record(bad)
    payload.decode("utf-8")  # storable: valid UTF-8 all through
    restored = decode_record(payload)
    assert restored.user_id == f"u{REPLACEMENT}" and restored.prompt == f"caf{REPLACEMENT} au lait"
    assert restored.response == f"nul{REPLACEMENT}byte"
    assert restored.calls[0].error_message == f"bad {REPLACEMENT} bytes"
    assert restored.routing == {f"reason{REPLACEMENT}": "key too"}
    assert restored.tags == {"team": "x", INVALID_TEXT_TAG: "replaced"}


def test_a_registered_key_is_masked_in_every_text_field():
    secret = "sk-journal-TEST-0123456789abcdefXYZ"
    SECRETS.register(secret)
    leaky = record(
        user_id=f"user {secret}",
        session_id=secret,
        prompt=f"my key is {secret}",
        system_prompt=f"use {secret}",
        response=f"your key {secret}",
        error_message=f"401 {secret}",
        calls=[
            CallRecord(
                "a",
                "m",
                1,
                2,
                True,
                content=f"echo {secret}",
                retried_errors=[RetriedError("RateLimited", f"429 for {secret}", 429, 0.5)],
            ),
            CallRecord("b", "m", 1, 2, False, error_message=f"bad key {secret}"),
        ],
        routing={"reason": secret, "candidate_scores": {secret: 1.0}},
        consensus={"answers": [secret]},
        tags={"key": secret, secret: "as a tag name"},
    )
    payload = encode_record(leaky)
    assert secret.encode() not in payload
    assert payload.count(MASK.encode()) >= 14
    operation = {"params": {"note": f"key {secret}"}, "tags": {}}
    assert secret not in json.dumps(storable(operation)[0])


def test_a_secret_split_across_two_fields_does_not_confuse_the_fast_check():
    # The one-pass check joins strings; a key-shaped run across the join only costs the exact path.
    value = {"a": "sk-9876543210", "b": "zyxwvu9876543210"}  # no 8-character piece of a key registered above
    clean, replaced = storable(value)
    assert clean == value and not replaced


# ---- isolating a refused record -----------------------------------------------------------


def test_a_refused_item_is_isolated_and_the_rest_written():
    calls: list[list[int]] = []
    stored: list[int] = []

    def write(chunk: list[int]) -> None:
        calls.append(chunk)
        if 13 in chunk:
            raise ValueError("the store refuses 13")
        stored.extend(chunk)

    outcome = isolate(list(range(100)), write)
    assert sorted(stored) == [i for i in range(100) if i != 13] == sorted(outcome.written)
    assert [item for item, _ in outcome.refused] == [13] and outcome.outage is None
    assert len(calls) <= 2 * 7 + 1  # halving: at most two writes per level of a 100-item batch


def test_an_outage_stops_the_batch_without_dead_lettering():
    calls = []

    def write(chunk: list[int]) -> None:
        calls.append(chunk)
        raise ConnectionError("store down")

    outcome = isolate([1, 2, 3], write)
    assert outcome.unwritten == [1, 2, 3] and outcome.refused == [] and len(calls) == 1


def test_errors_are_told_apart_by_type_and_code():
    assert is_refusal(sqlite3.IntegrityError("constraint"))
    assert is_refusal(UnicodeEncodeError("utf-8", "\udce9", 0, 1, "surrogates not allowed"))
    assert not is_refusal(sqlite3.OperationalError("database is locked"))
    assert not is_refusal(ConnectionRefusedError())
    full = OSError(errno.ENOSPC, "No space left on device")
    assert is_disk_full(full) and not is_refusal(full)
    try:
        try:
            raise OSError(errno.EFBIG, "File too large")
        except OSError as inner:
            raise ValueError("wrapped") from inner
    except ValueError as wrapped:
        assert is_disk_full(wrapped) and not is_refusal(wrapped)  # the cause decides


# ---- the journal file ---------------------------------------------------------------------


def test_a_journal_is_adopted_only_once_its_owner_lets_go(tmp_path):
    journal = Journal.create(tmp_path, "batch", "store-a")
    journal.append([Entry(REQUEST, "run-1", encode_record(record("1" * 32)))])
    assert Journal.adopt(journal.path, "batch", "store-a") is None  # held by its (living) owner
    assert not journal.close(delete_if_empty=True)  # it owes a record: kept
    assert Journal.adopt(journal.path, "batch", "store-b") is None  # its records go elsewhere
    adopted = Journal.adopt(journal.path, "batch", "store-a")
    assert adopted is not None and adopted.recovered == {"run-1": 1}
    assert Journal.adopt(journal.path, "batch", "store-a") is None  # one adopter at a time
    adopted.close(delete_if_empty=False)


def test_a_planned_part_is_the_same_after_a_crash(tmp_path):
    journal = Journal.create(tmp_path, "batch", "store-a")
    entries = [Entry(REQUEST, "run-1", encode_record(record(f"{i:032x}"))) for i in range(5)]
    journal.append(entries)
    part = journal.plan_part("run-1", limit=3)
    planned = [seq for seq, _ in journal.part_entries(part)]
    journal.append([Entry(REQUEST, "run-1", encode_record(record("f" * 32)))])
    journal.close(delete_if_empty=False)  # as if the process died before writing the part

    adopted = Journal.adopt(journal.path, "batch", "store-a")
    assert adopted.unwritten_parts() == [(part, "run-1")]
    assert [seq for seq, _ in adopted.part_entries(part)] == planned  # same rows, same name
    adopted.mark_part(part)
    adopted.mark_traces(planned)
    assert adopted.pending_counts() == (3, 0)  # the two unplanned rows and the sixth record
    adopted.close(delete_if_empty=False)


def test_entries_are_deleted_once_both_sides_are_done(tmp_path):
    journal = Journal.create(tmp_path, "none", "store-a")
    journal.append([Entry(REQUEST, "run-1", b"{}"), Entry(REQUEST, "run-1", b"{}", DONE, 0)])
    journal.set_run_id("run-1", "abc")
    part = journal.plan_part("run-1", limit=10)
    journal.mark_part(part)
    assert journal.pending_counts() == (2, 0)
    seqs = [seq for seq, *_ in journal.pending_traces(10, journal.last_seq())]
    journal.mark_traces(seqs)
    assert journal.is_empty() and journal.close(delete_if_empty=True)
    assert list(tmp_path.iterdir()) == []


class _Blocked:
    """Holds the journal's write lock from another connection, so no commit can happen."""

    def __init__(self, path: Path) -> None:
        self.connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.connection.execute("BEGIN IMMEDIATE")

    def release(self) -> None:
        self.connection.execute("COMMIT")
        self.connection.close()


def test_the_writer_holds_at_most_max_queue_records_outside_the_journal(tmp_path):
    journal = Journal.create(tmp_path, "batch", "store-a")
    commits = threading.Semaphore(0)
    stats = WriterStats()
    blocked = _Blocked(journal.path)
    writer = JournalWriter(
        journal,
        durability="batch",
        max_records=8,
        sync_interval_s=3600.0,  # only the count triggers a commit: the bound is by count
        stats=stats,
        dead_letters=DeadLetters(tmp_path / "dead", journal.id),
        on_commit=commits.release,
    )
    accepted = [writer.offer(record(f"{i:032x}")) for i in range(20)]
    assert sum(future is not None for future in accepted) == 8  # the rest must wait
    room = writer.room()
    assert not room.done() and writer.in_memory() == 8
    blocked.release()
    room.result(timeout=60)
    assert commits.acquire(timeout=60)
    assert writer.offer(record("f" * 32)) is not None
    assert writer.barrier().result(timeout=60) is True
    assert writer.stop() == 0 and journal.pending_counts() == (9, 0)
    assert stats.max_in_memory == 8
    journal.close(delete_if_empty=False)


def test_always_resolves_the_commit_before_the_record_counts_as_acknowledged(tmp_path):
    journal = Journal.create(tmp_path, "always", "store-a")
    writer = JournalWriter(
        journal,
        durability="always",
        max_records=4,
        sync_interval_s=3600.0,
        stats=WriterStats(),
        dead_letters=DeadLetters(tmp_path / "dead", journal.id),
        on_commit=lambda: None,
    )
    committed: Future[None] = writer.offer(record())
    committed.result(timeout=60)
    assert journal.pending_counts() == (1, 0)  # in the journal by the time the future resolves
    writer.stop()
    journal.close(delete_if_empty=False)


# ---- leases and URIs ----------------------------------------------------------------------


def test_a_file_lease_names_its_holder_and_frees_on_release(tmp_path):
    first, second = FileLease(tmp_path / "x.lock"), FileLease(tmp_path / "x.lock")
    assert first.acquire()
    assert not second.acquire() and "pid" in second.holder
    first.release()
    assert second.acquire()
    second.release()


def test_uris_are_shown_without_their_password():
    uri = "postgresql://bob:hunter2-long@db.internal:5432/mlflow"
    assert masked_uri(uri) == "postgresql://bob:***@db.internal:5432/mlflow"
    assert masked_uri("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"
    assert "hunter2" not in mask_uris_in(f"could not connect to {uri}: refused")


def test_an_unsupported_scheme_is_a_config_error_at_load_time(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="unsupported tracking URI scheme 'ftp'"):
        check_scheme("ftp://files.example/mlruns")
    for ok in ("sqlite:///x.db", "postgresql+psycopg2://h/db", "http://h:5000", "mlruns", "/abs/path"):
        check_scheme(ok)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "ftp://me:pa55word-long@files.example/mlruns")
    with pytest.raises(ConfigError, match="tracking_uri") as caught:
        load_tracking_settings(search_from=tmp_path)
    message = str(caught.value)
    assert "pa55word" not in message and ("***" in message or "[REDACTED]" in message)


def test_the_ui_keeps_a_store_password_out_of_argv():
    settings = TrackingSettings(tracking_uri="postgresql://bob:hunter2-long@db/mlflow")
    environment, argv = settings.ui_argv(5001)
    assert not any("hunter2" in arg for arg in argv)
    assert environment["MLFLOW_BACKEND_STORE_URI"] == settings.tracking_uri
    assert "hunter2" not in settings.ui_command(5001) and "***" in settings.ui_command(5001)
