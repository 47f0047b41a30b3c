"""How records and run operations are stored in the journal: sanitised JSON, as UTF-8 bytes.

    payload = encode_record(record)      # secrets masked, invalid text replaced and flagged
    decode_record(payload)               # a RequestRecord again (in the writer or trace process)

Serialisation lives here, in tracking, so nothing else needs to know a record's fields.
"""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

from orchestra.engine.records import CallRecord, RequestRecord
from orchestra.tracking.sanitize import INVALID_TEXT_TAG, storable

_RECORD_FIELDS = tuple(f.name for f in fields(RequestRecord) if f.name != "calls")
_CALL_FIELDS = tuple(f.name for f in fields(CallRecord))


def record_dict(record: RequestRecord) -> dict[str, Any]:
    """The record as plain data (nested dicts are shared, not copied: encode it at once)."""
    data = {name: getattr(record, name) for name in _RECORD_FIELDS}
    data["calls"] = [{name: getattr(call, name) for name in _CALL_FIELDS} for call in record.calls]
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


def decode_record(payload: bytes | str | dict[str, Any]) -> RequestRecord:
    data = payload if isinstance(payload, dict) else json.loads(payload)
    calls = [CallRecord(**call) for call in data.get("calls", [])]
    return RequestRecord(**{**data, "calls": calls})


def _dumps(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, default=str, separators=(",", ":")).encode("utf-8")
