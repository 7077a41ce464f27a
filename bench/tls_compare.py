#!/usr/bin/env python3
"""The TLS benchmark: aio's TLS streams against asio's ssl::stream, asyncio and uvloop
(and, for bulk transfer, OpenSSL's own s_server/s_client), over loopback.

    python3 bench/tls_compare.py --build-dir BUILD [--quick] [--json FILE]

Every peer uses the system's OpenSSL, one certificate generated at start-up with
the openssl CLI (RSA 2048 by default, --key-type ec for ECDSA P-256) and TLS 1.3
only. RSA because its signature makes the server the costlier side of a handshake
(with OpenSSL 3.0 an ECDSA P-256 handshake costs the verifying client about what it
costs the server, so the handshake rate would measure the client). Each server runs alone in a fresh process pinned to CPU 0 (taskset -c 0), its
load pinned to CPU 1. Four workloads:

  https      wrk -t1 -c100 -d<secs> https://127.0.0.1:PORT/ against a keep-alive
             HTTPS "hello world" server (wrk handshakes each connection once, then
             one request at a time on each);
  echo       tls_client: 100 TLS connections (handshaken before the clock starts),
             each sending 64 bytes and waiting for them to come back, for <secs>;
  handshake  tls_client --handshake: 32 connections in flight, each a loop of
             connect, full TLS 1.3 handshake (no resumption), close_notify, wait for
             the server to close, close; against the peers' echo servers;
  bulk       --mib MiB (default 1024) through one TLS connection, sender on CPU 1,
             receiver on CPU 0, for each pair of sender -> receiver among aio
             (tls_aio send / sink), OpenSSL's CLI (head -c N /dev/zero | openssl
             s_client -quiet -no_ign_eof; openssl s_server -quiet -naccept 1 >
             /dev/null) and tls_client --send / --sink (OpenSSL used directly: 1 MiB
             SSL_write calls, 256 KiB SSL_read calls with read-ahead: the ceiling of
             what OpenSSL can move over loopback). GiB/s is bytes over the wall time
             from the sender's start to both processes' exit (so it includes each
             program's start-up and the handshake: a few ms per GiB).

For https, echo and handshake, per peer: the rate (wrk's Requests/sec, round trips/s,
handshakes/s), the server's CPU per request (utime + stime from /proc/PID/stat across
the timed run, over the requests served) and its CPU % (below 100 %: the server was
not the bottleneck; tls_client, a C++ OpenSSL client, often is in the handshake
workload, so there the CPU per handshake is the figure that compares servers). For
bulk: GiB/s and each side's CPU seconds per GiB.

Rounds are interleaved (each round runs every peer once, in an order that rotates),
figures are medians over --rounds rounds (default 5, of --duration seconds, default
5, after --warmup 1 s); "x aio" ratios are the peer's figure over aio's, and the
paired ratio is the median over rounds of the same ratio within one round, the
steadier figure on a shared machine. A timed run during which the rest of the
machine used more than --max-other percent of a CPU is run again (--retries), as in
bench/net_compare.py, whose helpers this script uses. --quick is the CI smoke run:
one round of 2 s, no warm-up, 256 MiB bulk.

Peers (each skipped with a message when what it needs is missing):
  aio       BUILD/bench/tls_aio        bench/tls_aio.cpp (needs aio::tls)
  asio      BUILD/bench/tls_asio       bench/tls_asio.cpp
  asyncio   PYTHON bench/python/tls_asyncio.py
  uvloop    the same with --loop uvloop (python3-uvloop)
Load: wrk (package wrk, built with OpenSSL) and BUILD/bench/tls_client; the
openssl CLI (package openssl) for the certificate, the bulk pair and an
`openssl speed -evp aes-256-gcm` line for scale.

Exit status: 0 whatever the figures, 1 if a run failed, 2 if BUILD/bench lacks the
programs. Standard library only.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from compare import build_info, fmt, ratio
from net_compare import (CLOCK_TICK_US, BODY, ECHO_SIZE, REQUEST, Peer, RunFailure, Server, cpu_ticks, fmt_x,
                         free_port, paired_ratio, pinned, python_has, run_client, run_echo, system_busy_ticks,
                         tool_version)

HERE = Path(__file__).resolve().parent
ASYNCIO_SERVER = HERE / "python" / "tls_asyncio.py"

WORKLOADS = ("https", "echo", "handshake", "bulk")
SERVER_MODE = {"https": "https", "echo": "echo", "handshake": "echo"}
UNIT = {"https": "req", "echo": "round trip", "handshake": "handshake"}
RATE = {"https": "req/s", "echo": "round trips/s", "handshake": "handshakes/s"}


def log(message: str) -> None:
    print(f"[tls {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Certificate
# --------------------------------------------------------------------------

def make_certificate(directory: Path, key_type: str) -> tuple[Path, Path, str]:
    """A self-signed certificate for localhost / 127.0.0.1: (cert, key, description)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    if key_type == "rsa":
        newkey, what = ["-newkey", "rsa:2048"], "RSA 2048"
    else:
        newkey, what = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"], "ECDSA P-256"
    proc = subprocess.run(["openssl", "req", "-x509", *newkey, "-nodes", "-keyout", str(key), "-out", str(cert),
                           "-days", "2", "-subj", "/CN=localhost",
                           "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                          capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise SystemExit(f"tls_compare.py: openssl req failed: {proc.stderr.strip()}")
    return cert, key, what


# --------------------------------------------------------------------------
# Peers
# --------------------------------------------------------------------------

def find_peers(args: argparse.Namespace, cert: Path, key: Path) -> tuple[list[Peer], list[tuple[str, str]]]:
    bench = args.build_dir / "bench"
    peers: list[Peer] = []
    skipped: list[tuple[str, str]] = []
    for name, why in (("aio", "needs include/aio/tls.hpp and the aio::tls target"), ("asio", "")):
        binary = bench / f"tls_{name}"
        if os.access(binary, os.X_OK):
            peers.append(Peer(name, lambda port, mode, _, b=binary: [str(b), str(port), mode, str(cert), str(key)]))
        else:
            skipped.append((name, f"{binary} not built" + (f" ({why})" if why else "")))
    python = args.python
    if not python_has(python, "ssl"):
        skipped.append(("asyncio", f"{python} has no ssl module"))
    else:
        peers.append(Peer("asyncio", lambda port, mode, _: [python, str(ASYNCIO_SERVER), str(port), mode,
                                                             str(cert), str(key)]))
        if python_has(python, "uvloop"):
            peers.append(Peer("uvloop", lambda port, mode, _: [python, str(ASYNCIO_SERVER), str(port), mode,
                                                                str(cert), str(key), "--loop", "uvloop"]))
        else:
            skipped.append(("uvloop", f"the uvloop module is missing for {python} (apt-get install python3-uvloop)"))
    if args.only:
        wanted = [n.strip() for n in args.only.split(",") if n.strip()]
        known = {p.name for p in peers} | {n for n, _ in skipped}
        unknown = [n for n in wanted if n not in known]
        if unknown:
            raise SystemExit(f"tls_compare.py: unknown peer(s): {', '.join(unknown)}")
        peers = [p for p in peers if p.name in wanted]
        skipped = [(n, why) for n, why in skipped if n in wanted]
    return peers, skipped


# --------------------------------------------------------------------------
# Checks and loads
# --------------------------------------------------------------------------

def client_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    return context


def check_server(port: int, mode: str, name: str) -> str:
    """Two pipelined requests must get two responses, a 64-byte message its echo, over
    TLS 1.3; returns the negotiated cipher."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            client_context().wrap_socket(raw, server_hostname="localhost") as s:
        s.settimeout(5)
        if s.version() != "TLSv1.3":
            raise RunFailure(f"{name} {mode}: negotiated {s.version()}, not TLSv1.3")
        cipher = s.cipher()[0]
        if mode == "https":
            s.sendall(REQUEST * 2)
            want = lambda d: d.count(BODY) >= 2  # noqa: E731
        else:
            message = bytes(ord("a") + i % 26 for i in range(ECHO_SIZE))
            s.sendall(message)
            want = lambda d: len(d) >= ECHO_SIZE  # noqa: E731
        data = b""
        try:
            while not want(data):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except (socket.timeout, ssl.SSLError, OSError):
            pass
    ok = (data.count(b"HTTP/1.1 200 OK\r\n") == 2 and data.count(BODY) == 2) if mode == "https" else data == message
    if not ok:
        raise RunFailure(f"{name} {mode}: wrong answer to the check: {data[:300]!r}")
    return cipher


def run_wrk_https(port: int, seconds: int, connections: int, cpu: Optional[int]) -> dict:
    argv = pinned(cpu, ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s",
                        f"https://127.0.0.1:{port}/"])
    status, out, err, client_cpu = run_client(argv, seconds + 60)
    if status != 0:
        raise RunFailure(f"wrk ended with status {status}: {err.strip() or out.strip()}")
    m_total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)\b", out)
    m_rate = re.search(r"Requests/sec:\s*([\d.]+)", out)
    if not m_total or not m_rate:
        raise RunFailure(f"unreadable wrk output: {out.strip()}")
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        raise RunFailure(f"wrk saw {m.group(1)} non-2xx responses")
    result = {"count": int(m_total.group(1)), "rate": float(m_rate.group(1)), "client_cpu_s": client_cpu}
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        result["socket_errors"] = m.group(0)
    return result


def run_handshakes(client: Path, port: int, seconds: float, connections: int, cpu: Optional[int]) -> dict:
    argv = pinned(cpu, [str(client), "--handshake", str(port), str(connections), f"{seconds:g}"])
    status, out, err, client_cpu = run_client(argv, seconds + 60)
    try:
        result = json.loads(out.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise RunFailure(f"tls_client --handshake printed no JSON (status {status}): {err.strip()}") from None
    if status != 0:
        raise RunFailure(f"tls_client --handshake: {result.get('errors')} failed connections {err.strip()}")
    return {"count": int(result["handshakes"]), "rate": float(result["handshakes_per_s"]),
            "client_cpu_s": client_cpu, "close_errors": int(result.get("close_errors", 0))}


def run_load(workload: str, port: int, seconds: float, args: argparse.Namespace, cpu: Optional[int]) -> dict:
    client = args.build_dir / "bench" / "tls_client"
    if workload == "https":
        return run_wrk_https(port, max(1, round(seconds)), args.connections, cpu)
    if workload == "echo":
        return run_echo(client, port, seconds, args.connections, cpu)
    return run_handshakes(client, port, seconds, args.handshake_connections, cpu)


def measure(peer: Peer, workload: str, seconds: float, warmup: float, args: argparse.Namespace,
            cpus: tuple[Optional[int], Optional[int]]) -> dict:
    mode = SERVER_MODE[workload]
    server = Server(peer, mode, cpus[0])
    try:
        server.wait_ready()
        cipher = check_server(server.port, mode, peer.name)
        if warmup > 0:
            run_load(workload, server.port, warmup, args, cpus[1])
        pids = server.pids()
        busy0, ticks0, t0 = system_busy_ticks(), cpu_ticks(pids), time.monotonic()
        try:
            load = run_load(workload, server.port, seconds, args, cpus[1])
        finally:
            ticks1, t1, busy1 = cpu_ticks(pids), time.monotonic(), system_busy_ticks()
        if why := server.died():
            raise RunFailure(why)
        if load["count"] <= 0:
            raise RunFailure(f"{peer.name} {workload}: nothing served")
        cpu_us = (ticks1 - ticks0) * CLOCK_TICK_US
        other_s = (busy1 - busy0) * CLOCK_TICK_US / 1e6 - cpu_us / 1e6 - load["client_cpu_s"]
        result = {"rate": load["rate"], "count": load["count"], "cpu_us_per": cpu_us / load["count"],
                  "cpu_pct": 100 * cpu_us / 1e6 / (t1 - t0), "other_cpu_pct": 100 * max(0.0, other_s) / (t1 - t0),
                  "load_cpu_pct": 100 * load["client_cpu_s"] / (t1 - t0), "cipher": cipher}
        for key in ("socket_errors", "close_errors"):
            if load.get(key):
                result[key] = load[key]
        # A connection dropped mid-handshake (the readiness probe's bare TCP connect; the
        # handshake load's connections in flight when it stops) may be logged: not noise.
        noise = [line for line in server.output().splitlines()
                 if line.strip() and " on 127.0.0.1:" not in line and "handshake" not in line.lower()]
        if noise:
            result["server_output"] = noise[:10]
        return result
    finally:
        server.stop()


# --------------------------------------------------------------------------
# Bulk
# --------------------------------------------------------------------------

@dataclass
class Side:
    name: str
    sender: Callable[[int, int], list[str]]    # (port, MiB) -> argv
    receiver: Callable[[int], list[str]]       # port -> argv
    counts: bool                               # prints {"bytes": ...}


def bulk_sides(args: argparse.Namespace, cert: Path, key: Path) -> tuple[dict[str, Side], list[tuple[str, str]]]:
    bench = args.build_dir / "bench"
    sides: dict[str, Side] = {}
    skipped: list[tuple[str, str]] = []
    aio = bench / "tls_aio"
    if os.access(aio, os.X_OK):
        sides["aio"] = Side("aio", lambda port, mib: [str(aio), "send", str(port), str(mib), str(cert)],
                            lambda port: [str(aio), str(port), "sink", str(cert), str(key)], True)
    else:
        skipped.append(("aio", f"{aio} not built"))
    client = bench / "tls_client"
    sides["OpenSSL"] = Side("OpenSSL", lambda port, mib: [str(client), "--send", str(port), str(mib)],
                            lambda port: [str(client), "--sink", str(port), str(cert), str(key)], True)
    if shutil.which("openssl"):
        sides["openssl CLI"] = Side(
            "openssl CLI",
            lambda port, mib: ["sh", "-c", f"head -c {mib << 20} /dev/zero | openssl s_client -connect 127.0.0.1:{port} "
                                           "-quiet -no_ign_eof -tls1_3 >/dev/null 2>&1"],
            lambda port: ["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert", str(cert), "-key", str(key),
                          "-quiet", "-naccept", "1", "-tls1_3"], False)
    return sides, skipped


BULK_PAIRS = (("aio", "aio"), ("aio", "OpenSSL"), ("OpenSSL", "aio"), ("aio", "openssl CLI"),
              ("openssl CLI", "aio"), ("OpenSSL", "OpenSSL"), ("openssl CLI", "openssl CLI"))


def listening(port: int) -> bool:
    want = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as f:
        return any(cells[1] == want and cells[3] == "0A" for cells in (line.split() for line in f) if len(cells) > 3)


def measure_bulk(sender: Side, receiver: Side, mib: int, cpus: tuple[Optional[int], Optional[int]]) -> dict:
    port = free_port()
    out = tempfile.TemporaryFile()
    # s_server reads its standard input too and stops at its end: it gets a pipe kept open.
    proc = subprocess.Popen(pinned(cpus[0], receiver.receiver(port)), stdin=subprocess.PIPE,
                            stdout=out if receiver.counts else subprocess.DEVNULL, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while not listening(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RunFailure(f"bulk receiver {receiver.name} not listening on {port}")
            time.sleep(0.02)
        busy0, t0 = system_busy_ticks(), time.monotonic()
        status, sout, serr, sender_cpu = run_client(pinned(cpus[1], sender.sender(port, mib)), 120 + mib / 64)
        if status != 0:
            raise RunFailure(f"bulk sender {sender.name} ended with status {status}: {serr.strip()[-300:]}")
        killer = threading.Timer(60, os.killpg, (proc.pid, signal.SIGKILL))  # a receiver that never ends
        killer.start()
        try:
            _, rstatus, usage = os.wait4(proc.pid, 0)  # the rusage that Popen.wait() would throw away
        finally:
            killer.cancel()
        t1, busy1 = time.monotonic(), system_busy_ticks()
        proc.returncode = os.waitstatus_to_exitcode(rstatus)
        out.seek(0)
        text = out.read().decode(errors="replace")
        if proc.returncode != 0:
            raise RunFailure(f"bulk receiver {receiver.name} ended with status {proc.returncode}: {text.strip()[-300:]}")
        want = mib << 20
        for side, printed in ((receiver, text), (sender, sout)):
            if side.counts:
                try:
                    got = json.loads(printed.strip().splitlines()[-1])["bytes"]
                except (IndexError, KeyError, json.JSONDecodeError):
                    raise RunFailure(f"bulk {side.name} printed no byte count: {printed.strip()[-300:]}") from None
                if got != want:
                    raise RunFailure(f"bulk {sender.name} -> {receiver.name}: {side.name} counted {got} bytes, not {want}")
        receiver_cpu = usage.ru_utime + usage.ru_stime
        seconds = t1 - t0
        other_s = (busy1 - busy0) * CLOCK_TICK_US / 1e6 - receiver_cpu - sender_cpu
        gib = want / (1 << 30)
        return {"rate": gib / seconds, "seconds": seconds, "receiver_cpu_per_gib": receiver_cpu / gib,
                "sender_cpu_per_gib": sender_cpu / gib, "other_cpu_pct": 100 * max(0.0, other_s) / seconds}
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if proc.stdin:
            proc.stdin.close()
        out.close()


def openssl_speed(cpu: Optional[int], seconds: int) -> str:
    try:
        proc = subprocess.run(pinned(cpu, ["openssl", "speed", "-evp", "aes-256-gcm", "-bytes", "16384",
                                           "-seconds", str(seconds)]), capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return "openssl speed: not run"
    m = re.search(r"^AES-256-GCM\s+([\d.]+)k", proc.stdout, re.M | re.I)
    if not m:
        return "openssl speed: unreadable output"
    return f"openssl speed -evp aes-256-gcm, 16 KiB blocks, one core: {float(m.group(1)) * 1000 / (1 << 30):.2f} GiB/s"


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------

def table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"

    print(line(header))
    print("|" + "|".join("-" * (w + 1) + ("-" if i == 0 else ":") for i, w in enumerate(widths)) + "|")
    for r in rows:
        print(line(r))


def print_workload(workload: str, peers: list[Peer], medians: dict, runs: dict) -> None:
    unit, rate = UNIT[workload], RATE[workload]
    base = medians.get(("aio", workload)) or {}
    rows = []
    for p in peers:
        m = medians.get((p.name, workload))
        if not m:
            rows.append([p.name, "failed"] + [""] * 7)
            continue
        rows.append([p.name, fmt(m["rate"]), fmt(m["cpu_us_per"]), f"{m['cpu_pct']:.0f}", f"{m['load_cpu_pct']:.0f}",
                     fmt_x(ratio(m["rate"], base.get("rate"))), fmt_x(ratio(m["cpu_us_per"], base.get("cpu_us_per"))),
                     fmt_x(paired_ratio(runs, p.name, workload, "rate")),
                     fmt_x(paired_ratio(runs, p.name, workload, "cpu_us_per"))])
    table(["peer", rate, f"CPU us/{unit}", "server CPU %", "load CPU %", f"{rate} x aio", "CPU x aio",
           f"{rate} x aio, paired", "CPU x aio, paired"], rows)


def bulk_key(pair: tuple[str, str]) -> str:
    return f"{pair[0]} -> {pair[1]}"


def print_bulk(pairs: list[tuple[str, str]], medians: dict, runs: dict) -> None:
    base_key = bulk_key(("aio", "aio"))
    base = medians.get((base_key, "bulk")) or {}
    rows = []
    for pair in pairs:
        key = bulk_key(pair)
        m = medians.get((key, "bulk"))
        if not m:
            rows.append([key, "failed", "", "", "", ""])
            continue
        rows.append([key, f"{m['rate']:.2f}", f"{m['sender_cpu_per_gib']:.2f}", f"{m['receiver_cpu_per_gib']:.2f}",
                     fmt_x(ratio(m["rate"], base.get("rate"))), fmt_x(paired_ratio(runs, key, "bulk", "rate"))])
    table(["sender -> receiver", "GiB/s", "sender CPU s/GiB", "receiver CPU s/GiB", "GiB/s x aio->aio",
           "GiB/s x aio->aio, paired"], rows)


def target_lines(medians: dict, runs: dict, workloads: list[str], peer_names: set[str]) -> list[str]:
    lines = []

    def verdict(ok: Optional[bool]) -> str:
        return "n/a " if ok is None else ("PASS" if ok else "FAIL")

    for w in ("https", "echo"):
        if w not in workloads:
            continue
        for peer, limit in (("asio", 1.0), ("asyncio", 2.0)):
            if peer not in peer_names:
                continue
            r = paired_ratio(runs, peer, w, "cpu_us_per")
            lines.append(f"{verdict(None if r is None else r >= limit)}  {w}: aio CPU/{UNIT[w]} <= "
                         f"{'' if limit == 1 else '0.5 x '}{peer}'s  ({peer} / aio paired = {fmt_x(r)})")
    if "handshake" in workloads and "asio" in peer_names:
        r = paired_ratio(runs, "asio", "handshake", "rate")
        c = paired_ratio(runs, "asio", "handshake", "cpu_us_per")
        lines.append(f"{verdict(None if r is None else r <= 1.0)}  handshake: aio handshakes/s >= asio's "
                     f"(asio / aio paired = {fmt_x(r)}; CPU per handshake asio / aio = {fmt_x(c)})")
    if "bulk" in workloads:
        for other in ("openssl CLI -> openssl CLI", "OpenSSL -> OpenSSL"):
            r = paired_ratio(runs, other, "bulk", "rate")
            lines.append(f"{verdict(None if r is None else 1 / r >= 0.9)}  bulk: aio -> aio >= 90 % of {other} "
                         f"(aio / it paired = {fmt_x(None if not r else 1 / r)})")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description="TLS benchmark: aio against asio ssl::stream, asyncio, uvloop and "
                                                 "OpenSSL (see the module docstring).")
    parser.add_argument("--build-dir", required=True, type=Path,
                        help="CMake build directory (the programs are in BUILD/bench)")
    parser.add_argument("--quick", action="store_true", help="CI smoke run: one round of 2 s, no warm-up, 256 MiB")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 5, 1 with --quick)")
    parser.add_argument("--duration", type=int, default=None, help="seconds a timed run (default 5, 2 with --quick)")
    parser.add_argument("--warmup", type=float, default=None, help="seconds of load before each timed run "
                                                                    "(default 1, 0 with --quick)")
    parser.add_argument("--mib", type=int, default=None, help="MiB of each bulk transfer (default 1024, 256 with "
                                                              "--quick)")
    parser.add_argument("--max-other", type=float, default=10,
                        help="percent of a CPU that other processes may use during a timed run before it is "
                             "re-run (default 10)")
    parser.add_argument("--retries", type=int, default=2,
                        help="re-runs of a run that other processes disturbed (default 2)")
    parser.add_argument("--connections", type=int, default=100, help="connections of https and echo (default 100)")
    parser.add_argument("--handshake-connections", type=int, default=32,
                        help="handshakes in flight (default 32)")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help=f"a subset of {','.join(WORKLOADS)}")
    parser.add_argument("--only", metavar="PEER[,PEER]", help="a subset of the server peers")
    parser.add_argument("--key-type", choices=("rsa", "ec"), default="rsa",
                        help="the certificate's key: RSA 2048 (default) or ECDSA P-256")
    parser.add_argument("--python", default="/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK)
                        else sys.executable, help="interpreter of the asyncio and uvloop peers")
    parser.add_argument("--json", type=Path, help="also write the medians and every run here")
    args = parser.parse_args()
    # SIGTERM (a CI timeout, say) unwinds like ^C: the finally blocks stop the servers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    rounds = args.rounds if args.rounds is not None else (1 if args.quick else 5)
    duration = args.duration if args.duration is not None else (2 if args.quick else 5)
    warmup = args.warmup if args.warmup is not None else (0 if args.quick else 1)
    mib = args.mib if args.mib is not None else (256 if args.quick else 1024)
    if rounds < 1 or duration < 1 or args.connections < 1 or args.handshake_connections < 1 or mib < 1:
        parser.error("--rounds, --duration, --connections, --handshake-connections and --mib must be at least 1")
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    if not workloads or any(w not in WORKLOADS for w in workloads):
        parser.error(f"--workloads takes a subset of {','.join(WORKLOADS)}")

    bench = args.build_dir / "bench"
    if not os.access(bench / "tls_client", os.X_OK):
        print(f"tls_compare.py: missing {bench / 'tls_client'} (configure with -DAIO_BUILD_BENCH=ON, with libssl-dev, "
              "and build first)", file=sys.stderr)
        return 2
    if not shutil.which("openssl"):
        print("tls_compare.py: the openssl CLI is needed for the certificate (apt-get install openssl)", file=sys.stderr)
        return 2
    notes: list[str] = []
    if "https" in workloads and not shutil.which("wrk"):
        notes.append("https workload skipped: wrk not found (apt-get install wrk)")
        workloads.remove("https")
    affinity = os.sched_getaffinity(0)
    if shutil.which("taskset") and {0, 1} <= affinity:
        cpus: tuple[Optional[int], Optional[int]] = (0, 1)
    else:
        cpus = (None, None)
        notes.append("not pinned: taskset missing or CPUs 0 and 1 not both available")

    certs = Path(tempfile.mkdtemp(prefix="tls_compare_"))
    try:
        cert, key, key_text = make_certificate(certs, args.key_type)
        peers, skipped = find_peers(args, cert, key)
        sides, bulk_skipped = bulk_sides(args, cert, key)
        pairs = [p for p in BULK_PAIRS if p[0] in sides and p[1] in sides] if "bulk" in workloads else []
        for name, why in skipped + [(f"bulk {n}", w) for n, w in bulk_skipped]:
            log(f"skipping {name}: {why}")
        server_workloads = [w for w in workloads if w != "bulk"]
        if not peers and not pairs:
            print("tls_compare.py: nothing to run", file=sys.stderr)
            return 2

        started = datetime.datetime.now().astimezone()
        runs: dict[tuple[str, str], list[dict]] = {(p.name, w): [] for p in peers for w in server_workloads}
        runs.update({(bulk_key(p), "bulk"): [] for p in pairs})
        failures: list[str] = []
        warnings: list[str] = []
        disturbed = 0
        ciphers: set[str] = set()

        def attempt(what: str, label: str, workload: str, run: Callable[[], dict]) -> Optional[dict]:
            nonlocal disturbed
            r = None
            for try_ in range(args.retries + 1):
                try:
                    r = run()
                except (RunFailure, subprocess.TimeoutExpired, OSError, ssl.SSLError) as e:
                    failures.append(f"{what} {label} {workload}: {e}")
                    log(f"{what} {label} {workload}: FAILED ({e})")
                    return None
                if workload == "bulk":
                    log(f"{what} {label:28} {r['rate']:.2f} GiB/s, sender {r['sender_cpu_per_gib']:.2f} s/GiB, "
                        f"receiver {r['receiver_cpu_per_gib']:.2f} s/GiB, others {r['other_cpu_pct']:.0f}%")
                else:
                    log(f"{what} {label:8} {workload:9}: {r['rate']:,.0f}/s, {r['cpu_us_per']:.2f} CPU us each, "
                        f"CPU {r['cpu_pct']:.0f}%, load {r['load_cpu_pct']:.0f}%, others {r['other_cpu_pct']:.0f}%")
                if r["other_cpu_pct"] <= args.max_other:
                    break
                disturbed += 1
                if try_ < args.retries:
                    log(f"{what} {label} {workload}: other processes used {r['other_cpu_pct']:.0f}% of a CPU: again in 3 s")
                    time.sleep(3)
                else:
                    r["disturbed"] = True
                    warnings.append(f"{what} {label} {workload}: kept although other processes used "
                                    f"{r['other_cpu_pct']:.0f}% of a CPU (tried {args.retries + 1} times)")
            for key_ in ("socket_errors", "server_output"):
                if r.get(key_):
                    warnings.append(f"{what} {label} {workload}: {key_}: {r[key_]}")
            return r

        for round_ in range(rounds):
            what = f"round {round_ + 1}/{rounds}"
            for workload in server_workloads:
                shift = round_ % len(peers) if peers else 0
                for peer in peers[shift:] + peers[:shift]:
                    r = attempt(what, peer.name, workload,
                                lambda p=peer, w=workload: measure(p, w, duration, warmup, args, cpus))
                    if r:
                        r["round"] = round_
                        ciphers.add(r["cipher"])
                        runs[(peer.name, workload)].append(r)
            shift = round_ % len(pairs) if pairs else 0
            for pair in pairs[shift:] + pairs[:shift]:
                r = attempt(what, bulk_key(pair), "bulk",
                            lambda p=pair: measure_bulk(sides[p[0]], sides[p[1]], mib, cpus))
                if r:
                    r["round"] = round_
                    runs[(bulk_key(pair), "bulk")].append(r)
        # paired_ratio() looks for aio's runs under ("aio", mode): for bulk that is aio -> aio.
        runs[("aio", "bulk")] = runs.get((bulk_key(("aio", "aio")), "bulk"), [])

        fields = ("rate", "cpu_us_per", "cpu_pct", "load_cpu_pct", "other_cpu_pct", "receiver_cpu_per_gib", "sender_cpu_per_gib")
        medians = {k: {f: statistics.median(r[f] for r in rs) for f in fields if f in rs[0]}
                   for k, rs in runs.items() if rs}

        print(f"TLS benchmark — {'QUICK smoke run, figures indicative only' if args.quick else 'full run'}; "
              f"median of {rounds} round{'s' if rounds > 1 else ''} of {duration} s, peers interleaved")
        print(f"{started:%Y-%m-%d %H:%M %Z}, {platform.node()}, {os.cpu_count()} CPUs, Linux {platform.release()}; "
              f"{build_info(args.build_dir)}; {tool_version([args.python, '--version'])} ({args.python}); "
              f"{tool_version(['openssl', 'version'])}")
        print(f"servers on CPU {cpus[0] if cpus[0] is not None else 'any'}, load on CPU "
              f"{cpus[1] if cpus[1] is not None else 'any'}; certificate {key_text}, TLS 1.3"
              + (f", cipher {', '.join(sorted(ciphers))}" if ciphers else ""))
        others = [r["other_cpu_pct"] for k, rs in runs.items() if k != ("aio", "bulk") for r in rs]
        if others:
            print(f"other processes during the timed runs: median {statistics.median(others):.0f}%, "
                  f"max {max(others):.0f}% of a CPU; {disturbed} run{'s' if disturbed != 1 else ''} over "
                  f"{args.max_other:g}% re-run (--retries {args.retries})")
        if pairs:
            print(openssl_speed(cpus[0], 1 if args.quick else 3))
        for n in notes:
            print(f"note: {n}")
        for name, why in skipped + [(f"bulk {n}", w) for n, w in bulk_skipped]:
            print(f"skipped: {name} ({why})")
        print("x aio: the peer's figure over aio's; paired: the median over rounds of that ratio within a round")
        for workload in server_workloads:
            print()
            if workload == "https":
                print(f"HTTPS keep-alive hello world: wrk -t1 -c{args.connections} -d{duration}s https://...")
            elif workload == "echo":
                print(f"TLS echo: tls_client, {args.connections} connections, {ECHO_SIZE}-byte messages, one in flight each")
            else:
                print(f"TLS handshakes: tls_client --handshake, {args.handshake_connections} in flight, full TLS 1.3 "
                      "handshake + close_notify each")
            print()
            print_workload(workload, peers, medians, runs)
        if pairs:
            print()
            print(f"bulk: {mib} MiB through one TLS connection, sender on CPU {cpus[1]}, receiver on CPU {cpus[0]} "
                  "(OpenSSL: tls_client --send/--sink; openssl CLI: s_client/s_server)")
            print()
            print_bulk(pairs, medians, runs)
        print()
        print("targets:")
        for line in target_lines(medians, runs, workloads, {p.name for p in peers}):
            print(f"  {line}")
        if warnings:
            print()
            print("warnings:")
            for w in warnings:
                print(f"  {w}")
        if args.json:
            args.json.write_text(json.dumps({
                "started": started.isoformat(timespec="seconds"), "rounds": rounds, "duration_s": duration,
                "warmup_s": warmup, "mib": mib, "quick": args.quick, "connections": args.connections,
                "handshake_connections": args.handshake_connections, "cpus": list(cpus), "key": key_text,
                "ciphers": sorted(ciphers), "build": build_info(args.build_dir), "python": args.python,
                "skipped": dict(skipped), "notes": notes,
                "results": [{"peer": p, "workload": w, "median": medians.get((p, w)), "runs": rs}
                            for (p, w), rs in runs.items() if not (p == "aio" and w == "bulk")],
                "failures": failures, "warnings": warnings,
            }, indent=2) + "\n")
        if failures:
            print()
            print("failures:")
            for f in failures:
                print(f"  {f}")
            return 1
        return 0
    finally:
        shutil.rmtree(certs, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
