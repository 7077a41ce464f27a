#!/usr/bin/env python3
"""Runs a server example and a client example against it, and checks what each prints.

    check_pair.py --server PROG --server-expected FILE --client PROG --client-expected FILE
                  [--client-arg ARG ...]

The server is started with port 0 and must print its address first ("... HOST:PORT");
the client gets that port as its first argument, then the --client-arg values. Once the
client has exited and the server has printed as many lines as expected, the server gets
SIGINT, as Ctrl-C would send. Both must exit with 0, write nothing to stderr, and print
what their files say, in check_output.cmake's format: a line is literal, or "~ " and a
regular expression the whole line must match. Every wait is bounded.
"""
import argparse
import re
import selectors
import signal
import subprocess
import sys
import time

TIMEOUT = 20.0  # seconds, for each wait


def expected_lines(path):
    with open(path, encoding="utf-8") as f:
        return f.read().splitlines()


def matches(want, got):
    if want.startswith("~ "):
        return re.fullmatch(want[2:], got) is not None
    return want == got


def check(name, expected, actual):
    if len(expected) != len(actual):
        sys.exit(f"{name}: expected {len(expected)} lines, got {len(actual)}:\n" + "\n".join(actual))
    for i, (want, got) in enumerate(zip(expected, actual)):
        if not matches(want, got):
            sys.exit(f"{name}: line {i}: '{got}' does not match '{want}'")


def read_lines(proc, count, deadline):
    """Lines of proc's stdout until there are `count`, it ends, or the deadline passes."""
    lines, pending = [], b""
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while len(lines) < count and time.monotonic() < deadline:
            if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                continue
            chunk = proc.stdout.read1(65536)
            if not chunk:
                break
            pending += chunk
            *done, pending = pending.split(b"\n")
            lines += [line.decode() for line in done]
    return lines


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--server", required=True)
    p.add_argument("--server-expected", required=True)
    p.add_argument("--client", required=True)
    p.add_argument("--client-expected", required=True)
    p.add_argument("--client-arg", action="append", default=[])
    a = p.parse_args()
    server_expected = expected_lines(a.server_expected)

    server = subprocess.Popen([a.server, "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        server_out = read_lines(server, 1, time.monotonic() + TIMEOUT)
        found = re.search(r":(\d+)$", server_out[0]) if server_out else None
        if not found:
            sys.exit(f"the server printed no address: {server_out}")
        client = subprocess.run([a.client, found.group(1), *a.client_arg], capture_output=True, text=True,
                                timeout=TIMEOUT)
        if client.returncode != 0 or client.stderr:
            sys.exit(f"the client exited with {client.returncode}:\n{client.stdout}{client.stderr}")
        check("client", expected_lines(a.client_expected), client.stdout.splitlines())

        server_out += read_lines(server, len(server_expected) - len(server_out), time.monotonic() + TIMEOUT)
        server.send_signal(signal.SIGINT)
        rest, errors = server.communicate(timeout=TIMEOUT)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    server_out += rest.decode().splitlines()
    if server.returncode != 0 or errors:
        sys.exit(f"the server exited with {server.returncode} after SIGINT:\n{errors.decode()}")
    check("server", server_expected, server_out)
    print(f"server: {len(server_out)} lines, client: {len(client.stdout.splitlines())} lines, as expected")


if __name__ == "__main__":
    main()
