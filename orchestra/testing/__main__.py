"""Run one fake provider server in the foreground until SIGTERM or SIGINT.

python -m orchestra.testing openai --port 8123 --latency 0.2   # prints "READY http://127.0.0.1:8123"
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from orchestra.testing import SERVERS, FakeServer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line. Example: ``parse_args(["gemini", "--port", "0"]).provider == "gemini"``."""
    parser = argparse.ArgumentParser(prog="python -m orchestra.testing", description=__doc__.splitlines()[0])
    parser.add_argument("provider", choices=sorted(SERVERS), help="which wire format to speak")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on; 0 picks a free one")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds to wait before each model call")
    parser.add_argument("--api-key", default=None, help="require this API key (default: accept any)")
    return parser.parse_args(argv)


async def serve(server: FakeServer) -> None:
    """Start `server`, print the READY line, serve until SIGTERM/SIGINT. Example: ``await serve(server)``."""
    await server.start_async()
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopped.set)
    print(f"READY http://{server.host}:{server.port}", flush=True)
    try:
        await stopped.wait()
    finally:
        await server.stop_async()


def main(argv: list[str] | None = None) -> int:
    """Entry point. Example: ``main(["openai", "--latency", "0.2"])``."""
    args = parse_args(argv)
    server = SERVERS[args.provider](
        api_key=args.api_key, latency_s=args.latency, host=args.host, port=args.port
    )
    asyncio.run(serve(server))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
