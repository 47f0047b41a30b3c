"""How records and run operations are stored in the journal: sanitised JSON, as UTF-8 bytes.

    payload = encode_record(record)      # secrets masked, invalid text replaced and flagged
    decode_record(payload)               # a RequestRecord again (in the writer or trace process)

Serialisation lives here, in tracking, so nothing else needs to know a record's fields. Records
written before calls had typed fields (their extras under a call's `extra` dict: journals and
spools of earlier versions, request tables of `row_version` 1) are read into the typed fields.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, fields
from typing import Any

from orchestra.engine.records import CallRecord, RequestRecord, RetriedError
from orchestra.tracking.sanitize import INVALID_TEXT_TAG, storable

_RECORD_FIELDS = tuple(f.name for f in fields(RequestRecord) if f.name != "calls")
_CALL_FIELDS = tuple(f.name for f in fields(CallRecord) if f.name not in ("error", "retried_errors"))
_KNOWN_CALL_FIELDS = frozenset(_CALL_FIELDS) | {"retried_errors"}
_FORMER_EXTRAS = (
    "attempts",
    "retried_errors",
    "cache_hit",
    "rate_limit_wait_ms",
    "status",
    "cached_input_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)
"""What a call's `extra` dict held before these were typed fields."""


def call_dict(call: CallRecord) -> dict[str, Any]:
    """One call as plain data (what `calls_json` and the journal hold)."""
    data = {name: getattr(call, name) for name in _CALL_FIELDS}
    data["retried_errors"] = [asdict(retried) for retried in call.retried_errors]
    return data


def call_from_dict(data: Mapping[str, Any]) -> CallRecord:
    """A call from plain data of any version (an `extra` dict is read into the typed fields;
    keys this version does not know are ignored)."""
    values = {key: value for key, value in data.items() if key in _KNOWN_CALL_FIELDS}
    extra = data.get("extra") or {}
    for key in _FORMER_EXTRAS:
        if key in extra and key not in values:
            values[key] = extra[key]
    values["retried_errors"] = [
        RetriedError(**retried) if isinstance(retried, Mapping) else retried
        for retried in values.get("retried_errors") or ()
    ]
    return CallRecord(**values)


def record_dict(record: RequestRecord) -> dict[str, Any]:
    """The record as plain data (nested dicts are shared, not copied: encode it at once)."""
    data = {name: getattr(record, name) for name in _RECORD_FIELDS}
    data["calls"] = [call_dict(call) for call in record.calls]
    return data


def encode_record(record: RequestRecord) -> bytes:
    """The record, made storable (see `sanitize`), as journal bytes."""
    data, replaced = storable(record_dict(record))
    if replaced:
        data["tags"] = {**(data.get("tags") or {}), INVALID_TEXT_TAG: "replaced"}
    return _dumps(data)


def encode_operation(operation: dict[str, Any]) -> bytes:
    """A run operation (create, end, metrics), made storable, as journal bytes."""
    data, _ = storable(operation)
    return _dumps(data)


def decode(payload: bytes | str) -> dict[str, Any]:
    return json.loads(payload)


def decode_record(payload: bytes | str | Mapping[str, Any]) -> RequestRecord:
    """A record from its journal bytes or plain data (`record_dict`), of this version or earlier."""
    data = payload if isinstance(payload, Mapping) else json.loads(payload)
    calls = [call_from_dict(call) for call in data.get("calls", [])]
    return RequestRecord(**{**data, "calls": calls})


def _dumps(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, default=str, separators=(",", ":")).encode("utf-8")
