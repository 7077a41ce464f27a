#!/usr/bin/env python3
"""asyncio's side of the UDP benchmark (bench/udp_compare.py; the protocol and the
command line are bench/udp_support.hpp's), written the way asyncio is fastest: a
DatagramProtocol whose datagram_received answers at once.

    udp_asyncio.py [--loop asyncio|uvloop] receive COUNT ACK_EVERY
    udp_asyncio.py [--loop asyncio|uvloop] send PORT COUNT WINDOW ACK_EVERY
"""

import asyncio
import struct
import sys
import time

DATAGRAM = 64


class Receiver(asyncio.DatagramProtocol):
    def __init__(self, count, ack_every, done):
        self.count, self.ack_every, self.done = count, ack_every, done
        self.received = 0
        self.start = 0.0
        self.elapsed = 0.0

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.received += 1
        if self.received == 1:
            self.start = time.perf_counter()
        if self.received % self.ack_every == 0 or self.received == self.count:
            self.transport.sendto(struct.pack("<Q", self.received), addr)
        if self.received == self.count:
            self.elapsed = time.perf_counter() - self.start
            self.done.set_result(None)


class Sender(asyncio.DatagramProtocol):
    def __init__(self, count, window, done):
        self.count, self.window, self.done = count, window, done
        self.sent = 0
        self.acked = 0
        self.payload = bytearray(DATAGRAM)

    def connection_made(self, transport):
        self.transport = transport
        self.pump()

    def pump(self):
        while self.sent < self.count and self.sent - self.acked < self.window:
            struct.pack_into("<I", self.payload, 0, self.sent & 0xFFFFFFFF)
            self.transport.sendto(bytes(self.payload))
            self.sent += 1

    def datagram_received(self, data, addr):
        (n,) = struct.unpack_from("<Q", data)
        if n > self.acked:
            self.acked = n
        if self.acked >= self.count:
            if not self.done.done():
                self.done.set_result(None)
            return
        self.pump()

    def error_received(self, exc):
        if not self.done.done():
            self.done.set_exception(exc)


async def receive(count, ack_every):
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: Receiver(count, ack_every, done), local_addr=("127.0.0.1", 0))
    print("PORT", transport.get_extra_info("sockname")[1], flush=True)
    await done
    transport.close()
    print(f"RESULT {protocol.received} {protocol.elapsed:.6f}", flush=True)
    return 0


async def send(port, count, window):
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    start = time.perf_counter()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: Sender(count, window, done), remote_addr=("127.0.0.1", port))
    while True:
        acked = protocol.acked
        try:
            await asyncio.wait_for(asyncio.shield(done), 2)
            break
        except asyncio.TimeoutError:
            if protocol.acked == acked:
                print(f"udp_asyncio: no acknowledgement for 2 s (sent {protocol.sent}, "
                      f"acknowledged {protocol.acked}): a datagram was lost", file=sys.stderr)
                return 1
    transport.close()
    print(f"SENT {protocol.sent} {time.perf_counter() - start:.6f}", flush=True)
    return 0


def main(argv):
    loop_name = "asyncio"
    if len(argv) > 2 and argv[1] == "--loop":
        loop_name = argv[2]
        argv = argv[:1] + argv[3:]
    if loop_name == "uvloop":
        import uvloop
        uvloop.install()
    if len(argv) == 4 and argv[1] == "receive":
        return asyncio.run(receive(int(argv[2]), int(argv[3])))
    if len(argv) == 6 and argv[1] == "send":
        return asyncio.run(send(int(argv[2]), int(argv[3]), int(argv[4])))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
