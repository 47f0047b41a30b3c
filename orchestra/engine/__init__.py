"""The request engine: every `process_request` goes route -> fan-out -> choose -> record -> result.

Read one request in three files: `orchestrator.py` (`Orchestra.process_request`: the record's
only writer), `request.py` (the per-request object: routing, calling the providers in waves,
choosing the answer) and `records.py` / `result.py` (what is recorded, and what the caller gets).

This package imports nothing at import time (tracking imports `records` from it, and the engine
imports tracking): import `orchestra.Orchestra`, or the modules themselves.
"""
