"""A fake OpenAI Chat Completions server (also any OpenAI-compatible one) for the real `openai` SDK.

with FakeOpenAI() as server:
    client = OpenAI(base_url=server.base_url, api_key="test-key")
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])

Routes: ``POST /v1/chat/completions`` (``stream``, ``stream_options.include_usage``, ``logprobs``),
``GET /v1/models`` and ``GET /v1/models/{model}``. Auth: ``Authorization: Bearer <api_key>``.
`usage_extras`: ``cached_tokens`` (added to prompt_tokens) and ``reasoning_tokens`` (added to
completion_tokens).
"""

from __future__ import annotations

from typing import Any, ClassVar

from aiohttp import web

from orchestra.testing._wire import LOGPROB, count_words, sse, text_of
from orchestra.testing.fake_server import Exchange, FakeServer

_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}


class FakeOpenAI(FakeServer):
    """OpenAI's wire format; `base_url` ends in ``/v1``. Example: ``FakeOpenAI(latency_s=0.1).start()``."""

    base_path: ClassVar[str] = "/v1"
    id_prefix: ClassVar[str] = "chatcmpl-fake"
    models: ClassVar[tuple[str, ...]] = ("gpt-4o", "gpt-4o-mini")
    """The ids ``GET /v1/models`` lists; ``GET /v1/models/{id}`` answers for any id."""

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._model_call)
        app.router.add_get("/v1/models", self._list_models)
        app.router.add_get("/v1/models/{model:.+}", self._get_model)

    def _authorized(self, request: web.Request, api_key: str) -> bool:
        return request.headers.get("Authorization") == f"Bearer {api_key}"

    def _error_body(self, status: int, message: str) -> dict[str, Any]:
        kind, code = _ERROR_TYPES.get(
            status, ("server_error" if status >= 500 else "invalid_request_error", None)
        )
        return {"error": {"message": message, "type": kind, "param": None, "code": code}}

    def _model_info(self, name: str) -> dict[str, Any]:
        return {"id": name, "object": "model", "created": 1_700_000_000, "owned_by": "orchestra-fake"}

    def _model_page(self, models: list[dict[str, Any]]) -> dict[str, Any]:
        return {"object": "list", "data": models}

    # ----- answers -----

    def _exchange(self, request: web.Request, body: dict[str, Any]) -> Exchange:
        messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        texts = [text_of(m.get("content")) for m in messages]
        users = [text for m, text in zip(messages, texts, strict=True) if m.get("role") == "user"]
        prompt = users[-1] if users else (texts[-1] if texts else "")
        return Exchange(str(body.get("model", "")), prompt, count_words(*texts), body)

    def _usage(self, exchange: Exchange) -> dict[str, Any]:
        cached, reasoning = self._extra("cached_tokens"), self._extra("reasoning_tokens")
        prompt = exchange.input_words + cached
        completion = exchange.output_words + reasoning
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": reasoning,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def _envelope(self, exchange: Exchange, kind: str) -> dict[str, Any]:
        return {
            "id": exchange.id,
            "object": kind,
            "created": exchange.created,
            "model": exchange.model,
            "system_fingerprint": "fp_fake",
        }

    def _completion(self, exchange: Exchange) -> dict[str, Any]:
        logprobs = None
        if exchange.body.get("logprobs") is True:
            logprobs = {"content": [_logprob(piece) for piece in exchange.pieces], "refusal": None}
        choice = {
            "index": 0,
            "message": {"role": "assistant", "content": exchange.text, "refusal": None, "annotations": []},
            "logprobs": logprobs,
            "finish_reason": "stop",
        }
        return {
            **self._envelope(exchange, "chat.completion"),
            "choices": [choice],
            "usage": self._usage(exchange),
        }

    def _include_usage(self, exchange: Exchange) -> bool:
        options = exchange.body.get("stream_options")
        return isinstance(options, dict) and options.get("include_usage") is True

    def _chunk(self, exchange: Exchange, choices: list[dict[str, Any]]) -> dict[str, Any]:
        chunk = {**self._envelope(exchange, "chat.completion.chunk"), "choices": choices}
        if self._include_usage(exchange):
            chunk["usage"] = None
        return chunk

    def _stream_chunk(self, exchange: Exchange, index: int, piece: str, last: bool) -> bytes:
        delta = {"role": "assistant", "content": piece} if index == 0 else {"content": piece}
        logprobs = None
        if exchange.body.get("logprobs") is True:
            logprobs = {"content": [_logprob(piece)], "refusal": None}
        choice = {"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": None}
        return sse(self._chunk(exchange, [choice]))

    def _stream_tail(self, exchange: Exchange) -> list[bytes]:
        finish = {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
        events = [sse(self._chunk(exchange, [finish]))]
        if self._include_usage(exchange):
            events.append(sse({**self._chunk(exchange, []), "usage": self._usage(exchange)}))
        events.append(sse("[DONE]"))
        return events


def _logprob(piece: str) -> dict[str, Any]:
    return {"token": piece, "logprob": LOGPROB, "bytes": list(piece.encode()), "top_logprobs": []}
