"""A fake Anthropic Messages API server for the real `anthropic` SDK.

with FakeAnthropic() as server:
    client = Anthropic(base_url=server.base_url, api_key="test-key")
    client.messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=[...])

Routes: ``POST /v1/messages`` (``stream``), ``GET /v1/models`` and ``GET /v1/models/{model}``.
Auth: ``x-api-key: <api_key>``, or ``Authorization: Bearer <api_key>`` (what anthropic 2.x sends
for `api_key`).
`usage_extras`: ``cache_read_input_tokens`` and ``cache_creation_input_tokens``, reported next to
input_tokens, which excludes them as Anthropic reports it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from aiohttp import web

from orchestra.testing._wire import count_words, sse, text_of
from orchestra.testing.fake_server import Exchange, FakeServer

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


class FakeAnthropic(FakeServer):
    """Anthropic's wire format; `base_url` is the root URL. Example: ``FakeAnthropic(api_key=None)``."""

    id_prefix: ClassVar[str] = "msg_fake"
    models: ClassVar[tuple[str, ...]] = ("claude-sonnet-4-6", "claude-haiku-4-5")
    """The ids ``GET /v1/models`` lists; ``GET /v1/models/{id}`` answers for any id."""
    malformed_body: ClassVar[str] = '{"id": "msg_x", "type": "message", "content": ['
    malformed_event: ClassVar[bytes] = (
        b'event: message_start\ndata: {"type": "message_start", "message": {\n\n'
    )

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/messages", self._model_call)
        app.router.add_get("/v1/models", self._list_models)
        app.router.add_get("/v1/models/{model:.+}", self._get_model)

    def _authorized(self, request: web.Request, api_key: str) -> bool:
        headers = request.headers
        return headers.get("x-api-key") == api_key or headers.get("Authorization") == f"Bearer {api_key}"

    def _error_body(self, status: int, message: str) -> dict[str, Any]:
        kind = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        return {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_fake"}

    def _model_info(self, name: str) -> dict[str, Any]:
        return {
            "type": "model",
            "id": name,
            "display_name": name,
            "created_at": "2025-01-01T00:00:00Z",
            "lifecycle": "active",
        }

    def _model_page(self, models: list[dict[str, Any]]) -> dict[str, Any]:
        return {"data": models, "has_more": False, "first_id": models[0]["id"], "last_id": models[-1]["id"]}

    # ----- answers -----

    def _exchange(self, request: web.Request, body: dict[str, Any]) -> Exchange:
        messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        texts = [text_of(m.get("content")) for m in messages]
        users = [text for m, text in zip(messages, texts, strict=True) if m.get("role") == "user"]
        prompt = users[-1] if users else (texts[-1] if texts else "")
        words = count_words(text_of(body.get("system")), *texts)
        return Exchange(str(body.get("model", "")), prompt, words, body)

    def _usage(self, exchange: Exchange, output_tokens: int) -> dict[str, Any]:
        return {
            "input_tokens": exchange.input_words,
            "output_tokens": output_tokens,
            "cache_creation_input_tokens": self._extra("cache_creation_input_tokens"),
            "cache_read_input_tokens": self._extra("cache_read_input_tokens"),
            "service_tier": "standard",
        }

    def _message(self, exchange: Exchange, content: list[dict[str, Any]], done: bool) -> dict[str, Any]:
        return {
            "id": exchange.id,
            "type": "message",
            "role": "assistant",
            "model": exchange.model,
            "content": content,
            "stop_reason": "end_turn" if done else None,
            "stop_sequence": None,
            "usage": self._usage(exchange, exchange.output_words if done else 1),
        }

    def _completion(self, exchange: Exchange) -> dict[str, Any]:
        return self._message(exchange, [{"type": "text", "text": exchange.text}], done=True)

    def _stream_head(self, exchange: Exchange) -> list[bytes]:
        start = {"type": "message_start", "message": self._message(exchange, [], done=False)}
        block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
        return [_event(start), _event(block)]

    def _stream_chunk(self, exchange: Exchange, index: int, piece: str, last: bool) -> bytes:
        return _event(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}
        )

    def _stream_tail(self, exchange: Exchange) -> list[bytes]:
        usage = self._usage(exchange, exchange.output_words)
        usage.pop("service_tier")
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": usage,
        }
        return [
            _event({"type": "content_block_stop", "index": 0}),
            _event(delta),
            _event({"type": "message_stop"}),
        ]


def _event(data: dict[str, Any]) -> bytes:
    return sse(data, event=data["type"])
