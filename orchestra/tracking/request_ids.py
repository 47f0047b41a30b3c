"""Request ids a sweep can predict: the same (sweep, arm, prompt) always gets the same id.

A sweep's request that runs again (a Ray shard retried after its worker died, an arm resumed)
then writes the same row and the same trace again instead of a second one: `load_requests`
keeps one row per request id, and a trace written twice is updated (its span ids derive from
the request id). The sweep passes the id with the request:

    await orch.process_request(prompt, request_id=sweep_request_id("3f2a...", "9c1b...", 17))

>>> sweep_request_id("sweep", "arm", 0) == sweep_request_id("sweep", "arm", 0)
True
>>> len(sweep_request_id("sweep", "arm", 0))
32
"""

from __future__ import annotations

import hashlib


def sweep_request_id(sweep: str, arm_id: str, index: int) -> str:
    """32 hex digits (like a generated id, and an OTel trace id) for prompt `index` of an arm."""
    return hashlib.sha256(f"{sweep}\x1f{arm_id}\x1f{index}".encode()).hexdigest()[:32]
