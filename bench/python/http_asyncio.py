#!/usr/bin/env python3
"""asyncio's side of the network benchmark (bench/net_compare.py).

    python3 bench/python/http_asyncio.py PORT [http|echo] [--loop asyncio|uvloop]

The keep-alive HTTP/1.1 "hello world" server that bench/http_aio.cpp ports, with
asyncio's streams: start_server, one handler a connection, readuntil(b"\\r\\n\\r\\n"),
write of the fixed response, drain(), until the client hangs up. Echo mode reads with
read(65536) and writes back what came.

--loop uvloop serves on uvloop's loop (Debian: python3-uvloop, for Debian's
/usr/bin/python3); when the module is missing it says so and exits with status 3,
which net_compare.py reports as a skipped peer.

Serves until SIGINT or SIGTERM. Standard library only (uvloop optional).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

RESPONSE = (b"HTTP/1.1 200 OK\r\n"
            b"Server: bench\r\n"
            b"Content-Type: text/plain\r\n"
            b"Content-Length: 12\r\n"
            b"\r\n"
            b"Hello world\n")


async def serve_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(RESPONSE)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    writer.close()


async def serve_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    writer.close()


async def main(port: int, echo: bool, loop_name: str) -> None:
    server = await asyncio.start_server(serve_echo if echo else serve_http, "127.0.0.1", port, backlog=1024)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"http_asyncio ({loop_name}): {'echo' if echo else 'http'} on 127.0.0.1:"
          f"{server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await stop.wait()


def run() -> int:
    parser = argparse.ArgumentParser(description="asyncio's side of bench/net_compare.py")
    parser.add_argument("port", type=int)
    parser.add_argument("mode", nargs="?", choices=("http", "echo"), default="http")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    args = parser.parse_args()
    if args.loop == "uvloop":
        try:
            import uvloop  # optional: only this peer needs it
        except ImportError:
            print(f"http_asyncio: uvloop is not installed for {sys.executable} "
                  "(Debian: apt-get install python3-uvloop, then run /usr/bin/python3)", file=sys.stderr)
            return 3
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.run(main(args.port, args.mode == "echo", args.loop))
    return 0


if __name__ == "__main__":
    sys.exit(run())
