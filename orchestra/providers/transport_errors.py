"""Transport failures below the SDKs (httpx, httpx2, aiohttp) -> orchestra's provider errors.

SDKs wrap most of these, but a stream that breaks midway or a body that is not JSON can surface
as the HTTP library's own exception. They are recognised by type: the exception's class (or a
base class) from one of those libraries, or the standard timeout/OS/value errors.

    transport_error("gemini", aiohttp.ServerDisconnectedError())  # ProviderUnavailable
"""

from __future__ import annotations

import asyncio

from orchestra.errors import MalformedResponse, ProviderError, ProviderTimeout, ProviderUnavailable

_HTTP_LIBRARIES = ("httpx", "httpx2", "httpcore", "aiohttp", "h11", "anyio")
_TIMEOUT_NAMES = {"TimeoutException", "ReadTimeout", "ConnectTimeout", "ServerTimeoutError", "PoolTimeout"}


def _library_bases(err: BaseException) -> list[str]:
    return [cls.__name__ for cls in type(err).__mro__ if cls.__module__.split(".")[0] in _HTTP_LIBRARIES]


def transport_error(provider: str, err: BaseException) -> ProviderError | None:
    """The provider error for a transport-level exception, or None if `err` is not one."""
    names = _library_bases(err)
    if isinstance(err, TimeoutError | asyncio.TimeoutError) or _TIMEOUT_NAMES & set(names):
        return ProviderTimeout("request timed out", provider=provider)
    if names or isinstance(err, OSError):
        return ProviderUnavailable(f"connection failed: {type(err).__name__}: {err}", provider=provider)
    if isinstance(err, ValueError):  # json.JSONDecodeError and friends: a body that is not JSON
        return MalformedResponse(f"unreadable response: {err}", provider=provider)
    return None
