"""A fake Gemini API (generativelanguage) server for the real `google-genai` SDK used with an API key.

with FakeGemini() as server:
    options = types.HttpOptions(base_url=server.base_url, api_version="v1beta")
    client = genai.Client(api_key="test-key", http_options=options)
    client.models.generate_content(model="gemini-2.5-flash", contents="hi")

Routes (any ``v1*`` version): ``POST /v1beta/models/{model}:generateContent``,
``POST /v1beta/models/{model}:streamGenerateContent?alt=sse`` (always answered as SSE),
``GET /v1beta/models`` and ``GET /v1beta/models/{model}``. Auth: ``x-goog-api-key`` header or ``key=`` query.
`usage_extras`: ``cached_content_token_count`` (included in promptTokenCount) and ``thoughts_token_count``
(excluded from candidatesTokenCount, included in totalTokenCount).
"""

from __future__ import annotations

from typing import Any, ClassVar

from aiohttp import web

from orchestra.testing._wire import LOGPROB, count_words, sse, text_of
from orchestra.testing.fake_server import Exchange, FakeServer

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_MODELS_PATH = "/{version:v1[a-z0-9]*}/models"


class FakeGemini(FakeServer):
    """The Gemini API's wire format; `base_url` is the root URL. Example: ``FakeGemini(latency_s=0.05)``."""

    id_prefix: ClassVar[str] = "fake-response-"
    models: ClassVar[tuple[str, ...]] = ("gemini-2.5-flash", "gemini-2.5-pro")
    """The names ``GET /v1beta/models`` lists; ``GET /v1beta/models/{name}`` answers for any name."""
    malformed_body: ClassVar[str] = '{"candidates": [{"content": {"parts": ['
    malformed_event: ClassVar[bytes] = b'data: {"candidates": [{"content": {"parts": [\n\n'

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_post(_MODELS_PATH + "/{model}", self._post_model)
        app.router.add_get(_MODELS_PATH, self._list_models)
        app.router.add_get(_MODELS_PATH + "/{model}", self._get_model)

    def _authorized(self, request: web.Request, api_key: str) -> bool:
        return request.headers.get("x-goog-api-key") == api_key or request.query.get("key") == api_key

    def _error_body(self, status: int, message: str) -> dict[str, Any]:
        return {"error": {"code": status, "message": message, "status": _STATUS_NAMES.get(status, "UNKNOWN")}}

    async def _post_model(self, request: web.Request) -> web.StreamResponse:
        _, _, action = request.match_info["model"].rpartition(":")
        if action == "generateContent":
            return await self._model_call(request, stream=False)
        if action == "streamGenerateContent":
            return await self._model_call(request, stream=True)
        return self._error_response(404, f"Method {action!r} is not supported by the fake.")

    def _model_info(self, name: str) -> dict[str, Any]:
        return {
            "name": f"models/{name}",
            "version": "001",
            "displayName": name,
            "description": "A fake model.",
            "inputTokenLimit": 1_048_576,
            "outputTokenLimit": 65_536,
            "supportedGenerationMethods": ["generateContent", "countTokens"],
        }

    def _model_page(self, models: list[dict[str, Any]]) -> dict[str, Any]:
        return {"models": models}

    # ----- answers -----

    def _exchange(self, request: web.Request, body: dict[str, Any]) -> Exchange:
        model = request.match_info["model"].rpartition(":")[0]
        contents = [c for c in body.get("contents") or [] if isinstance(c, dict)]
        texts = [text_of(c.get("parts")) for c in contents]
        users = [text for c, text in zip(contents, texts, strict=True) if c.get("role", "user") == "user"]
        prompt = users[-1] if users else (texts[-1] if texts else "")
        system = body.get("systemInstruction")
        system_text = text_of(system.get("parts")) if isinstance(system, dict) else ""
        return Exchange(model, prompt, count_words(system_text, *texts), body)

    def _wants_logprobs(self, exchange: Exchange) -> bool:
        config = exchange.body.get("generationConfig")
        return isinstance(config, dict) and config.get("responseLogprobs") is True

    def _usage(self, exchange: Exchange) -> dict[str, Any]:
        cached, thoughts = self._extra("cached_content_token_count"), self._extra("thoughts_token_count")
        prompt = exchange.input_words + cached
        candidates = exchange.output_words
        usage: dict[str, Any] = {
            "promptTokenCount": prompt,
            "candidatesTokenCount": candidates,
            "totalTokenCount": prompt + candidates + thoughts,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
        }
        if cached:
            usage["cachedContentTokenCount"] = cached
        if thoughts:
            usage["thoughtsTokenCount"] = thoughts
        return usage

    def _response(self, exchange: Exchange, pieces: list[str], done: bool) -> dict[str, Any]:
        candidate: dict[str, Any] = {
            "content": {"role": "model", "parts": [{"text": "".join(pieces)}]},
            "index": 0,
        }
        if done:
            candidate["finishReason"] = "STOP"
        if self._wants_logprobs(exchange):
            chosen = [{"token": piece, "logProbability": LOGPROB} for piece in pieces]
            candidate["avgLogprobs"] = LOGPROB
            candidate["logprobsResult"] = {
                "topCandidates": [],
                "chosenCandidates": chosen,
                "logProbabilitySum": LOGPROB * len(chosen),
            }
        response: dict[str, Any] = {"candidates": [candidate]}
        if done:
            response["usageMetadata"] = self._usage(exchange)
        response["modelVersion"] = exchange.model
        response["responseId"] = exchange.id
        return response

    def _completion(self, exchange: Exchange) -> dict[str, Any]:
        return self._response(exchange, exchange.pieces, done=True)

    def _stream_chunk(self, exchange: Exchange, index: int, piece: str, last: bool) -> bytes:
        return sse(self._response(exchange, [piece], done=last))
