#!/usr/bin/env python3
"""asyncio's side of the TLS benchmark (bench/tls_compare.py).

    python3 bench/python/tls_asyncio.py PORT https|echo CERT KEY [--loop asyncio|uvloop]

The servers of bench/python/http_asyncio.py behind TLS: start_server(..., ssl=ctx)
with an ssl.SSLContext(PROTOCOL_TLS_SERVER) holding CERT and KEY, TLS 1.3 only.
https: readuntil(b"\\r\\n\\r\\n"), write of the fixed response, drain(), until the
client hangs up; echo: read(65536) and write back what came.

--loop uvloop serves on uvloop's loop (Debian: python3-uvloop, for /usr/bin/python3);
when the module is missing it says so and exits with status 3.

Serves until SIGINT or SIGTERM. Standard library only (uvloop optional).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import ssl
import sys

RESPONSE = (b"HTTP/1.1 200 OK\r\n"
            b"Server: bench\r\n"
            b"Content-Type: text/plain\r\n"
            b"Content-Length: 12\r\n"
            b"\r\n"
            b"Hello world\n")


async def serve_https(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(RESPONSE)
            await writer.drain()
    except (asyncio.IncompleteReadError, OSError):  # ssl.SSLError is an OSError
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
    except OSError:
        pass
    writer.close()


async def main(port: int, echo: bool, context: ssl.SSLContext, loop_name: str) -> None:
    server = await asyncio.start_server(serve_echo if echo else serve_https, "127.0.0.1", port, ssl=context,
                                        backlog=1024)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"tls_asyncio ({loop_name}): {'echo' if echo else 'https'} on 127.0.0.1:"
          f"{server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await stop.wait()


def run() -> int:
    parser = argparse.ArgumentParser(description="asyncio's side of bench/tls_compare.py")
    parser.add_argument("port", type=int)
    parser.add_argument("mode", choices=("https", "echo"))
    parser.add_argument("cert")
    parser.add_argument("key")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    args = parser.parse_args()
    if args.loop == "uvloop":
        try:
            import uvloop  # optional: only this peer needs it
        except ImportError:
            print(f"tls_asyncio: uvloop is not installed for {sys.executable} "
                  "(Debian: apt-get install python3-uvloop, then run /usr/bin/python3)", file=sys.stderr)
            return 3
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_cert_chain(args.cert, args.key)
    asyncio.run(main(args.port, args.mode == "echo", context, args.loop))
    return 0


if __name__ == "__main__":
    sys.exit(run())
