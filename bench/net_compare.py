#!/usr/bin/env python3
"""The network benchmark: aio's streams against asio, asyncio, uvloop, nginx, tokio
and a bare epoll loop, over loopback.

    python3 bench/net_compare.py --build-dir BUILD [--quick] [--json FILE]

Two workloads, each server alone in a fresh process pinned to CPU 0 (taskset -c 0),
its load pinned to CPU 1:

  http  wrk -t1 -c100 -d<secs> http://127.0.0.1:PORT/ against a keep-alive HTTP/1.1
        "hello world" server (one request at a time on each of 100 connections);
  echo  bench/echo_client.cpp: 100 connections, each sending 64 bytes and waiting for
        them to come back, for <secs> (nginx has no echo mode).

For each peer and workload:

  req/s (round trips/s)  wrk's Requests/sec (the echo client's count over its time);
  CPU us/req             the server's utime + stime (/proc/PID/stat, clock ticks,
                         summed over its process tree: nginx's master and worker)
                         across the timed run, divided by the requests served;
  CPU %                  that CPU time over the run's wall time: a server below 100%
                         was not the bottleneck (wrk on one core often is);
  syscalls/req           from a separate, shorter run (counting slows the server, so
                         never the timed one): perf stat -e raw_syscalls:sys_enter
                         when perf can read the tracepoints, else strace -c -f; the
                         system calls the server made over the requests it served.
                         --json keeps each peer's most frequent calls.

The peers are interleaved: each round runs every peer once, in an order that rotates
from round to round, and the figures are medians over --rounds rounds (default 5, of
--duration seconds, default 5, after a --warmup of 1 s). --quick is the CI smoke
run: one round of 2 s, no warm-up, 1 s syscall runs.

A neighbour on the machine skews every figure, so each timed run also measures what
the rest of the machine used meanwhile (all CPUs' busy time from /proc/stat, less
the server's and the load program's own): a run during which other processes took
more than --max-other percent of a CPU (default 10) is run again, up to --retries
times (default 2), and kept with a warning if it never ran quiet. The header line
"other processes during the timed runs" says how quiet the machine was.

Before each run the server is checked: two pipelined requests must get two
"Hello world\\n" responses, a 64-byte message its echo; a server that fails a check,
dies or errors out makes the run a failure (exit status 1).

Peers (each skipped with a message when what it needs is missing):
  aio        BUILD/bench/http_aio         bench/http_aio.cpp
  reference  BUILD/bench/http_reference   bench/http_reference.cpp (the floor)
  asio       BUILD/bench/http_asio        bench/http_asio.cpp
  asyncio    PYTHON bench/python/http_asyncio.py
  uvloop     the same with --loop uvloop  (python3-uvloop, for Debian's python3)
  nginx      nginx, one worker, `return 200 "Hello world\\n";`  (nginx-light)
  tokio      bench/tokio, built with cargo --offline against Debian's crates
             (cargo, librust-tokio-dev) into BUILD/bench/net_tokio
Load: wrk (package wrk) and BUILD/bench/echo_client. Syscall counting: perf
(linux-perf) or strace. PYTHON is --python, by default /usr/bin/python3 when it
exists (Debian's uvloop is built for it), else this interpreter.

Ratios are "x aio": the peer's figure over aio's (req/s x aio 0.5: half aio's
throughput; CPU x aio 2.0: twice aio's CPU per request). "CPU x aio, paired" is the
median over the rounds of the peer's CPU per request over aio's in the same round: on
a shared machine whose speed drifts by ±20 % from minute to minute, it is the steadier
comparison.

Exit status: 0 whatever the figures, 1 if a run failed, 2 if BUILD/bench lacks the
programs. Standard library only.
"""

from __future__ import annotations

import argparse
import datetime
import errno
import json
import os
import platform
import re
import select
import shutil
import signal
import socket
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

HERE = Path(__file__).resolve().parent
ASYNCIO_SERVER = HERE / "python" / "http_asyncio.py"
TOKIO_CRATE = HERE / "tokio"
CARGO_REGISTRY = Path("/usr/share/cargo/registry")
CLOCK_TICK_US = 1e6 / os.sysconf("SC_CLK_TCK")

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
BODY = b"Hello world\n"
ECHO_SIZE = 64

MODES = ("http", "echo")
UNIT = {"http": "req", "echo": "round trip"}


class RunFailure(Exception):
    pass


def log(message: str) -> None:
    print(f"[net {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Peers
# --------------------------------------------------------------------------

@dataclass
class Peer:
    name: str
    command: Callable[[int, str, Path], list[str]]  # (port, mode, scratch dir) -> argv
    modes: tuple[str, ...] = MODES
    note: str = ""


NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 1;
error_log {dir}/error.log warn;
pid {dir}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    default_type text/plain;
    keepalive_requests 1000000000;
    keepalive_timeout 300s;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port} backlog=1024;
        location / {{ return 200 "Hello world\\n"; }}
    }}
}}
"""


def nginx_command(nginx: str) -> Callable[[int, str, Path], list[str]]:
    def command(port: int, mode: str, scratch: Path) -> list[str]:
        (scratch / "nginx.conf").write_text(NGINX_CONF.format(dir=scratch, port=port))
        return [nginx, "-q", "-p", str(scratch), "-c", str(scratch / "nginx.conf")]
    return command


def python_has(python: str, module: str) -> bool:
    try:
        return subprocess.run([python, "-c", f"import {module}"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def build_tokio(build_dir: Path, registry: Path) -> tuple[Optional[Path], str]:
    """Builds bench/tokio offline against Debian's crates; (binary, "") or (None, why not)."""
    cargo = shutil.which("cargo")
    if not cargo:
        return None, "cargo not found (apt-get install cargo librust-tokio-dev)"
    if not any(registry.glob("tokio-1.*")):
        return None, f"no tokio crate in {registry} (apt-get install librust-tokio-dev)"
    work = build_dir / "bench" / "net_tokio"
    (work / "src").mkdir(parents=True, exist_ok=True)
    (work / ".cargo").mkdir(exist_ok=True)
    shutil.copy2(TOKIO_CRATE / "Cargo.toml", work / "Cargo.toml")
    shutil.copy2(TOKIO_CRATE / "src" / "main.rs", work / "src" / "main.rs")
    (work / ".cargo" / "config.toml").write_text(
        "# Generated by bench/net_compare.py: crates.io replaced by Debian's packaged crates.\n"
        "[source.crates-io]\nreplace-with = \"debian\"\n\n"
        f"[source.debian]\ndirectory = \"{registry}\"\n\n"
        "[net]\noffline = true\n")
    # Resolved afresh each time: a lock file from another cargo may not parse.
    (work / "Cargo.lock").unlink(missing_ok=True)
    log(f"building the tokio peer in {work} (cargo build --release --offline)")
    try:
        proc = subprocess.run([cargo, "build", "--release", "--offline", "--quiet"], cwd=work,
                              capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        return None, "cargo build took more than 15 minutes"
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        return None, f"cargo build failed: {tail}"
    binary = work / "target" / "release" / "http_tokio"
    if not binary.is_file():
        return None, f"cargo build made no {binary}"
    return binary, ""


def find_peers(args: argparse.Namespace) -> tuple[list[Peer], list[tuple[str, str]]]:
    bench = args.build_dir / "bench"
    peers: list[Peer] = []
    skipped: list[tuple[str, str]] = []
    for name in ("aio", "reference", "asio"):
        binary = bench / f"http_{name}"
        peers.append(Peer(name, lambda port, mode, _, b=binary: [str(b), str(port), mode]))

    python = args.python
    if not python_has(python, "asyncio"):
        skipped.append(("asyncio", f"{python} cannot run asyncio"))
    else:
        peers.append(Peer("asyncio", lambda port, mode, _: [python, str(ASYNCIO_SERVER), str(port), mode]))
    if python_has(python, "uvloop"):
        peers.append(Peer("uvloop", lambda port, mode, _: [python, str(ASYNCIO_SERVER), str(port), mode,
                                                            "--loop", "uvloop"]))
    else:
        skipped.append(("uvloop", f"the uvloop module is missing for {python} (apt-get install python3-uvloop)"))

    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
    if nginx:
        peers.append(Peer("nginx", nginx_command(nginx), modes=("http",), note="no echo mode"))
    else:
        skipped.append(("nginx", "nginx not found (apt-get install nginx-light)"))

    wanted = {n.strip() for n in args.only.split(",")} if args.only else None
    if args.no_tokio:
        skipped.append(("tokio", "--no-tokio"))
    elif wanted is not None and "tokio" not in wanted:
        pass  # not asked for: not built
    else:
        binary, why = build_tokio(args.build_dir, args.cargo_registry)
        if binary:
            peers.append(Peer("tokio", lambda port, mode, _, b=binary: [str(b), str(port), mode]))
        else:
            skipped.append(("tokio", why))

    if args.only:
        wanted = [n.strip() for n in args.only.split(",") if n.strip()]
        known = {p.name for p in peers} | {n for n, _ in skipped}
        unknown = [n for n in wanted if n not in known]
        if unknown:
            raise SystemExit(f"net_compare.py: unknown peer(s): {', '.join(unknown)}")
        peers = [p for p in peers if p.name in wanted]
        skipped = [(n, why) for n, why in skipped if n in wanted]
    return peers, skipped


# --------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return pids


def cpu_ticks(pids: list[int]) -> int:
    """utime + stime of these processes (every thread), in clock ticks."""
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)
    return total


def pinned(cpu: Optional[int], argv: list[str]) -> list[str]:
    return argv if cpu is None else ["taskset", "-c", str(cpu)] + argv


class Server:
    """One peer's server in its own process group, until stop()."""

    def __init__(self, peer: Peer, mode: str, cpu: Optional[int]):
        self.peer, self.mode = peer, mode
        self.port = free_port()
        self.scratch = Path(tempfile.mkdtemp(prefix=f"net_{peer.name}_"))
        self.out = open(self.scratch / "server.out", "w+")
        argv = pinned(cpu, peer.command(self.port, mode, self.scratch))
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.out, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def output(self) -> str:
        self.out.flush()
        self.out.seek(0)
        return self.out.read()

    def died(self) -> Optional[str]:
        if self.proc.poll() is None:
            return None
        code = self.proc.returncode
        how = f"signal {-code}" if code < 0 else f"exit status {code}"
        tail = " | ".join(self.output().strip().splitlines()[-5:])
        return f"{self.peer.name} {self.mode} server ended with {how}" + (f": {tail}" if tail else "")

    def wait_ready(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if why := self.died():
                raise RunFailure(why)
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RunFailure(f"{self.peer.name} {self.mode} server not accepting on port {self.port} after {timeout:g} s")

    def pids(self) -> list[int]:
        return process_tree(self.proc.pid)

    def stop(self) -> None:
        for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
            if self.proc.poll() is not None:
                break
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
        self.out.close()
        shutil.rmtree(self.scratch, ignore_errors=True)


def check_server(port: int, mode: str, name: str) -> None:
    """Two pipelined requests must get two responses; an echo must come back whole."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.settimeout(5)
        if mode == "http":
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
        except socket.timeout:
            pass
    if mode == "http":
        ok = data.count(b"HTTP/1.1 200 OK\r\n") == 2 and data.count(BODY) == 2
    else:
        ok = data == message
    if not ok:
        raise RunFailure(f"{name} {mode}: wrong answer to the check: {data[:300]!r}")


# --------------------------------------------------------------------------
# Load
# --------------------------------------------------------------------------

def system_busy_ticks() -> int:
    """Every CPU's busy time so far (/proc/stat: user nice system irq softirq steal)."""
    with open("/proc/stat") as f:
        cells = f.readline().split()
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(c) for c in cells[1:9])
    return user + nice + system + irq + softirq + steal


def run_client(argv: list[str], timeout: float) -> tuple[int, str, str, float]:
    """Runs a load program: (exit status, stdout, stderr, CPU seconds it used)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)  # the rusage that Popen.wait() would throw away
        finally:
            killer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return (proc.returncode, out.read().decode(errors="replace"), err.read().decode(errors="replace"),
                usage.ru_utime + usage.ru_stime)


def run_wrk(port: int, seconds: int, connections: int, cpu: Optional[int]) -> dict:
    argv = pinned(cpu, ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s",
                        f"http://127.0.0.1:{port}/"])
    status, out, err, client_cpu = run_client(argv, seconds + 60)
    if status != 0:
        raise RunFailure(f"wrk ended with status {status}: {err.strip() or out.strip()}")
    m_total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)\b", out)
    m_rate = re.search(r"Requests/sec:\s*([\d.]+)", out)
    if not m_total or not m_rate:
        raise RunFailure(f"unreadable wrk output: {out.strip()}")
    result = {"count": int(m_total.group(1)), "rate": float(m_rate.group(1)), "socket_errors": 0, "non_2xx": 0,
              "client_cpu_s": client_cpu}
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        result["socket_errors"] = sum(int(g) for g in m.groups())
        result["socket_errors_detail"] = m.group(0)
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        result["non_2xx"] = int(m.group(1))
    if m := re.search(r"Latency\s+(\S+)", out):
        result["latency_avg"] = m.group(1)
    if result["non_2xx"]:
        raise RunFailure(f"wrk saw {result['non_2xx']} non-2xx responses")
    return result


def run_echo(client: Path, port: int, seconds: float, connections: int, cpu: Optional[int]) -> dict:
    argv = pinned(cpu, [str(client), str(port), str(connections), f"{seconds:g}", str(ECHO_SIZE)])
    status, out, err, client_cpu = run_client(argv, seconds + 60)
    try:
        result = json.loads(out.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise RunFailure(f"echo_client printed no JSON (status {status}): {err.strip()}") from None
    if status != 0:
        raise RunFailure(f"echo_client: {result.get('errors')} failed connections, {result.get('mismatches')} "
                         f"wrong echoes {err.strip()}")
    return {"count": int(result["roundtrips"]), "rate": float(result["roundtrips_per_s"]), "client_cpu_s": client_cpu}


def run_load(mode: str, port: int, seconds: float, args: argparse.Namespace, cpu: Optional[int]) -> dict:
    if mode == "http":
        return run_wrk(port, max(1, round(seconds)), args.connections, cpu)
    return run_echo(args.build_dir / "bench" / "echo_client", port, seconds, args.connections, cpu)


# --------------------------------------------------------------------------
# System calls
# --------------------------------------------------------------------------

# The calls named in perf's breakdown (when the kernel has their tracepoints); the
# total is raw_syscalls:sys_enter, every call. All ~370 syscalls:sys_enter_* at once
# would take perf some 15 s to set up and tear down.
NAMED_SYSCALLS = ("read", "write", "readv", "writev", "recvfrom", "sendto", "recvmsg", "sendmsg",
                  "epoll_wait", "epoll_pwait", "epoll_pwait2", "epoll_ctl", "accept4", "close", "shutdown",
                  "futex", "io_uring_enter", "getsockname", "getpeername", "setsockopt", "ioctl",
                  "mmap", "munmap", "brk")


def tracepoints(names: tuple[str, ...]) -> list[str]:
    for root in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing"):
        events = Path(root) / "events" / "syscalls"
        try:
            present = set(os.listdir(events))
        except OSError:
            continue
        return [f"syscalls:sys_enter_{n}" for n in names if f"sys_enter_{n}" in present]
    return []


class SyscallCounter:
    """Counts the system calls of running processes, from construction to stop():
    perf stat on the syscall tracepoints, started disabled and switched on and off
    through its control FIFOs (the window is exact), or strace -c -f (attached, then
    a pause so that it is before the load starts: an idle server makes no calls)."""

    def __init__(self, method: str, pids: list[int]):
        self.method = method
        self.scratch = Path(tempfile.mkdtemp(prefix="net_syscalls_"))
        self.path = self.scratch / "counts"
        self.ctl = self.ack = None
        if method == "perf":
            os.mkfifo(self.scratch / "ctl")
            os.mkfifo(self.scratch / "ack")
            named = tracepoints(NAMED_SYSCALLS)
            argv = ["perf", "stat", "-x,", "-o", str(self.path), "-D", "-1",
                    "--control", f"fifo:{self.scratch / 'ctl'},{self.scratch / 'ack'}",
                    "-e", "raw_syscalls:sys_enter"] + (["-e", ",".join(named)] if named else []) + \
                   ["-p", ",".join(map(str, pids))]
        else:
            argv = ["strace", "-c", "-f", "-qq", "-o", str(self.path)] + [a for p in pids for a in ("-p", str(p))]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        if method == "perf":
            self.ctl = self.open_fifo("ctl", os.O_WRONLY)
            self.ack = self.open_fifo("ack", os.O_RDONLY)
            self.command("enable")
        else:
            time.sleep(0.7)
        if self.proc.poll() is not None:
            raise RunFailure(f"{method} could not attach: {self.proc.stderr.read().strip()}")

    def open_fifo(self, name: str, flags: int, timeout: float = 30) -> int:
        """Opens one of perf's FIFOs without blocking on a perf that never opens it."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return os.open(self.scratch / name, flags | os.O_NONBLOCK)
            except OSError as e:  # ENXIO: no reader yet
                if e.errno != errno.ENXIO or self.proc.poll() is not None or time.monotonic() > deadline:
                    self.proc.kill()
                    raise RunFailure(f"perf did not open its control FIFO: {self.proc.stderr.read().strip()}") from None
                time.sleep(0.01)

    def command(self, what: str, timeout: float = 30) -> None:
        os.write(self.ctl, (what + "\n").encode())
        deadline, answer = time.monotonic() + timeout, b""
        while b"ack" not in answer:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise RunFailure(f"perf did not acknowledge {what!r}")
            if select.select([self.ack], [], [], min(left, 0.5))[0]:
                chunk = os.read(self.ack, 64)
                if not chunk:  # no writer (yet): select says EOF
                    time.sleep(0.01)
                answer += chunk

    def stop(self) -> tuple[int, dict[str, int]]:
        """(total calls, calls by name)."""
        if self.ctl is not None:
            self.command("disable")
            os.close(self.ctl)
            os.close(self.ack)
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise RunFailure(f"{self.method} did not stop") from None
        text = self.path.read_text(errors="replace") if self.path.is_file() else ""
        shutil.rmtree(self.scratch, ignore_errors=True)
        total, by_name = 0, {}
        if self.method == "perf":
            for line in text.splitlines():
                cells = line.split(",")
                if len(cells) < 3 or not cells[0].strip().isdigit():
                    continue
                event, count = cells[2], int(cells[0])
                if event == "raw_syscalls:sys_enter":
                    total = count
                elif event.startswith("syscalls:sys_enter_") and count:
                    by_name[event[len("syscalls:sys_enter_"):]] = count
        else:
            for line in text.splitlines():
                cells = line.split()
                if len(cells) < 5 or not all(re.fullmatch(r"[\d.]+", c) for c in cells[:-1]):
                    continue
                calls = int(cells[3])  # % time, seconds, usecs/call, calls[, errors], name
                if cells[-1] == "total":
                    total = calls
                else:
                    by_name[cells[-1]] = calls
        if total == 0:
            total = sum(by_name.values())
        if self.method == "perf" and total > sum(by_name.values()):
            by_name["(others)"] = total - sum(by_name.values())
        return total, dict(sorted(by_name.items(), key=lambda kv: -kv[1]))


def syscall_method(wanted: str) -> tuple[Optional[str], str]:
    def perf_works() -> bool:
        if not shutil.which("perf"):
            return False
        try:
            proc = subprocess.run(["perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter", "true"],
                                  capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return proc.returncode == 0 and re.search(r"^\d+,.*raw_syscalls:sys_enter", proc.stderr, re.M) is not None

    if wanted == "none":
        return None, "not counted (--syscalls none)"
    if wanted in ("auto", "perf") and perf_works():
        return "perf", "perf stat -e raw_syscalls:sys_enter"
    if wanted == "perf":
        return None, "perf cannot read the syscall tracepoints (linux-perf; root or perf_event_paranoid -1)"
    if shutil.which("strace"):
        return "strace", "strace -c -f"
    return None, "neither perf (linux-perf) nor strace (strace) is usable: syscalls/req not measured"


# --------------------------------------------------------------------------
# One run
# --------------------------------------------------------------------------

def measure(peer: Peer, mode: str, seconds: float, warmup: float, args: argparse.Namespace,
            cpus: tuple[Optional[int], Optional[int]], count_syscalls: Optional[str] = None) -> dict:
    server = Server(peer, mode, cpus[0])
    try:
        server.wait_ready()
        check_server(server.port, mode, peer.name)
        if warmup > 0:
            run_load(mode, server.port, warmup, args, cpus[1])
        pids = server.pids()
        counter = SyscallCounter(count_syscalls, pids) if count_syscalls else None
        busy0, ticks0, t0 = system_busy_ticks(), cpu_ticks(pids), time.monotonic()
        try:
            load = run_load(mode, server.port, seconds, args, cpus[1])
        finally:
            ticks1, t1, busy1 = cpu_ticks(pids), time.monotonic(), system_busy_ticks()
            calls = counter.stop() if counter else None
        if why := server.died():
            raise RunFailure(why)
        if load["count"] <= 0:
            raise RunFailure(f"{peer.name} {mode}: no request served")
        cpu_us = (ticks1 - ticks0) * CLOCK_TICK_US
        # What the rest of the machine used meanwhile (other processes, the host's steal):
        # a busy neighbour takes CPU 0 or 1 from the run and skews every figure.
        other_s = (busy1 - busy0) * CLOCK_TICK_US / 1e6 - cpu_us / 1e6 - load["client_cpu_s"]
        result = {"rate": load["rate"], "count": load["count"], "cpu_us_per": cpu_us / load["count"],
                  "cpu_pct": 100 * cpu_us / 1e6 / (t1 - t0), "other_cpu_pct": 100 * max(0.0, other_s) / (t1 - t0)}
        for key in ("socket_errors", "socket_errors_detail", "latency_avg"):
            if key in load:
                result[key] = load[key]
        if calls:
            total, by_name = calls
            result["syscalls_per"] = total / load["count"]
            result["syscalls_total"] = total
            result["syscalls_top"] = {k: round(v / load["count"], 3) for k, v in list(by_name.items())[:10]}
        noise = [line for line in server.output().splitlines() if line.strip() and " on 127.0.0.1:" not in line]
        if noise:
            result["server_output"] = noise[:10]
        return result
    finally:
        server.stop()


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------

def fmt_x(r: Optional[float]) -> str:
    return "n/a" if r is None else f"{r:.2f}"


def paired_ratio(runs: dict, peer: str, mode: str, field: str) -> Optional[float]:
    """The median over the rounds both ran of the peer's figure over aio's in the same
    round: a slow spell of the machine slows both, so it cancels out of each ratio."""
    aio_by_round = {r["round"]: r[field] for r in runs.get(("aio", mode), [])}
    ratios = [r[field] / aio_by_round[r["round"]] for r in runs.get((peer, mode), [])
              if aio_by_round.get(r["round"])]
    return statistics.median(ratios) if ratios else None


def print_table(mode: str, peers: list[Peer], medians: dict, syscalls: dict, runs: dict) -> None:
    unit = UNIT[mode]
    rate_label = "req/s" if mode == "http" else "round trips/s"
    header = ["peer", rate_label, f"CPU us/{unit}", "server CPU %", f"syscalls/{unit}",
              f"{rate_label} x aio", "CPU x aio", "CPU x aio, paired", "syscalls x aio"]
    base = medians.get(("aio", mode)) or {}
    base_sys = (syscalls.get(("aio", mode)) or {}).get("syscalls_per")
    rows = []
    for p in peers:
        if mode not in p.modes:
            continue
        m = medians.get((p.name, mode))
        s = (syscalls.get((p.name, mode)) or {}).get("syscalls_per")
        if not m:
            rows.append([p.name, "failed", "", "", fmt(s), "", "", "", ""])
            continue
        rows.append([p.name, fmt(m["rate"]), fmt(m["cpu_us_per"]), f"{m['cpu_pct']:.0f}", fmt(s),
                     fmt_x(ratio(m["rate"], base.get("rate"))), fmt_x(ratio(m["cpu_us_per"], base.get("cpu_us_per"))),
                     fmt_x(paired_ratio(runs, p.name, mode, "cpu_us_per")), fmt_x(ratio(s, base_sys))])
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"

    print(line(header))
    print("|" + "|".join("-" * (w + 1) + ("-" if i == 0 else ":") for i, w in enumerate(widths)) + "|")
    for r in rows:
        print(line(r))


def tool_version(argv: list[str]) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    text = (proc.stdout + proc.stderr).strip().splitlines()
    return text[0] if text else "?"


def main() -> int:
    parser = argparse.ArgumentParser(description="Network benchmark: aio against asio, asyncio, uvloop, nginx, "
                                                 "tokio and a bare epoll loop (see the module docstring).")
    parser.add_argument("--build-dir", required=True, type=Path,
                        help="CMake build directory (the programs are in BUILD/bench)")
    parser.add_argument("--quick", action="store_true", help="CI smoke run: one round of 2 s, no warm-up")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 5, 1 with --quick)")
    parser.add_argument("--duration", type=int, default=None, help="seconds a timed run (default 5, 2 with --quick)")
    parser.add_argument("--warmup", type=float, default=None, help="seconds of load before each timed run "
                                                                    "(default 1, 0 with --quick)")
    parser.add_argument("--syscall-duration", type=float, default=None,
                        help="seconds of the syscall-counting run (default 2, 1 with --quick)")
    parser.add_argument("--syscalls", choices=("auto", "perf", "strace", "none"), default="auto",
                        help="how system calls are counted (default: perf if it can, else strace)")
    parser.add_argument("--max-other", type=float, default=10,
                        help="percent of a CPU that other processes may use during a timed run before it is "
                             "re-run (default 10)")
    parser.add_argument("--retries", type=int, default=2,
                        help="re-runs of a run that other processes disturbed (default 2)")
    parser.add_argument("--connections", type=int, default=100, help="connections of the load (default 100)")
    parser.add_argument("--modes", default="http,echo", help="workloads: http, echo or both (default)")
    parser.add_argument("--only", metavar="PEER[,PEER]", help="a subset of the peers")
    parser.add_argument("--python", default="/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK)
                        else sys.executable, help="interpreter of the asyncio and uvloop peers")
    parser.add_argument("--no-tokio", action="store_true", help="skip the tokio peer (and its cargo build)")
    parser.add_argument("--cargo-registry", type=Path, default=CARGO_REGISTRY,
                        help=f"Debian's crate directory (default {CARGO_REGISTRY})")
    parser.add_argument("--json", type=Path, help="also write the medians and every run here")
    args = parser.parse_args()

    rounds = args.rounds if args.rounds is not None else (1 if args.quick else 5)
    duration = args.duration if args.duration is not None else (2 if args.quick else 5)
    warmup = args.warmup if args.warmup is not None else (0 if args.quick else 1)
    sys_duration = args.syscall_duration if args.syscall_duration is not None else (1 if args.quick else 2)
    if rounds < 1 or duration < 1 or args.connections < 1:
        parser.error("--rounds, --duration and --connections must be at least 1")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or any(m not in MODES for m in modes):
        parser.error("--modes takes http, echo or http,echo")

    bench = args.build_dir / "bench"
    missing = [str(bench / n) for n in ("http_aio", "http_reference", "http_asio", "echo_client")
               if not os.access(bench / n, os.X_OK)]
    if missing:
        print(f"net_compare.py: missing {', '.join(missing)} (configure with -DAIO_BUILD_BENCH=ON and build first)",
              file=sys.stderr)
        return 2

    notes: list[str] = []
    if "http" in modes and not shutil.which("wrk"):
        notes.append("http workload skipped: wrk not found (apt-get install wrk)")
        modes.remove("http")
    if not modes:
        print("net_compare.py: nothing to run (" + "; ".join(notes) + ")", file=sys.stderr)
        return 2
    affinity = os.sched_getaffinity(0)
    if shutil.which("taskset") and {0, 1} <= affinity:
        cpus: tuple[Optional[int], Optional[int]] = (0, 1)
    else:
        cpus = (None, None)
        notes.append("not pinned: taskset missing or CPUs 0 and 1 not both available")
    method, method_text = syscall_method(args.syscalls)

    peers, skipped = find_peers(args)
    for name, why in skipped:
        log(f"skipping {name}: {why}")
    if not peers:
        print("net_compare.py: no peer to run", file=sys.stderr)
        return 2

    started = datetime.datetime.now().astimezone()
    runs: dict[tuple[str, str], list[dict]] = {(p.name, m): [] for p in peers for m in modes if m in p.modes}
    failures: list[str] = []
    warnings: list[str] = []
    disturbed_runs = 0

    def attempt(peer: Peer, mode: str, what: str, seconds: float, warm: float, count: Optional[str]) -> Optional[dict]:
        try:
            r = measure(peer, mode, seconds, warm, args, cpus, count)
        except (RunFailure, subprocess.TimeoutExpired, OSError) as e:
            failures.append(f"{what} {peer.name} {mode}: {e}")
            log(f"{what} {peer.name} {mode}: FAILED ({e})")
            return None
        if r.get("socket_errors"):
            warnings.append(f"{what} {peer.name} {mode}: wrk {r['socket_errors_detail']}")
        if r.get("server_output"):
            warnings.append(f"{what} {peer.name} {mode}: the server printed: " + " | ".join(r["server_output"]))
        return r

    for round_ in range(rounds):
        shift = round_ % len(peers)
        for peer in peers[shift:] + peers[:shift]:
            for mode in modes:
                if mode not in peer.modes:
                    continue
                what = f"round {round_ + 1}/{rounds}"
                for try_ in range(args.retries + 1):
                    r = attempt(peer, mode, what, duration, warmup, None)
                    if not r:
                        break
                    log(f"{what} {peer.name:9} {mode}: {r['rate']:,.0f}/s, {r['cpu_us_per']:.2f} CPU us each, "
                        f"CPU {r['cpu_pct']:.0f}%, others {r['other_cpu_pct']:.0f}%")
                    if r["other_cpu_pct"] <= args.max_other:
                        break
                    disturbed_runs += 1
                    if try_ < args.retries:
                        log(f"{what} {peer.name} {mode}: other processes used {r['other_cpu_pct']:.0f}% of a CPU "
                            f"(over --max-other {args.max_other:g}%): again in 3 s")
                        time.sleep(3)
                    else:
                        r["disturbed"] = True
                        warnings.append(f"{what} {peer.name} {mode}: kept although other processes used "
                                        f"{r['other_cpu_pct']:.0f}% of a CPU during it (tried {args.retries + 1} times)")
                if r:
                    r["round"] = round_
                    runs[(peer.name, mode)].append(r)

    syscalls: dict[tuple[str, str], dict] = {}
    if method:
        for peer in peers:
            for mode in modes:
                if mode not in peer.modes:
                    continue
                r = attempt(peer, mode, f"syscalls ({method})", sys_duration, 0, method)
                if r:
                    syscalls[(peer.name, mode)] = r
                    log(f"syscalls {peer.name:9} {mode}: {r['syscalls_per']:.2f} each "
                        f"({', '.join(f'{k} {v}' for k, v in list(r['syscalls_top'].items())[:4])})")

    medians = {key: {f: statistics.median(r[f] for r in rs) for f in ("rate", "cpu_us_per", "cpu_pct", "other_cpu_pct")}
               for key, rs in runs.items() if rs}

    print(f"network benchmark — {'QUICK smoke run, figures indicative only' if args.quick else 'full run'}; "
          f"median of {rounds} round{'s' if rounds > 1 else ''} of {duration} s, peers interleaved")
    print(f"{started:%Y-%m-%d %H:%M %Z}, {platform.node()}, {os.cpu_count()} CPUs, Linux {platform.release()}; "
          f"{build_info(args.build_dir)}; {tool_version([args.python, '--version'])} ({args.python})")
    print(f"servers on CPU {cpus[0] if cpus[0] is not None else 'any'}, load on CPU "
          f"{cpus[1] if cpus[1] is not None else 'any'}; {args.connections} connections; "
          f"syscalls: {method_text}" + (f", from a separate {sys_duration:g} s run" if method else ""))
    others = [r["other_cpu_pct"] for rs in runs.values() for r in rs]
    if others:
        print(f"other processes during the timed runs: median {statistics.median(others):.0f}%, "
              f"max {max(others):.0f}% of a CPU; {disturbed_runs} run{'s' if disturbed_runs != 1 else ''} over "
              f"{args.max_other:g}% re-run (--retries {args.retries})")
    for n in notes:
        print(f"note: {n}")
    for name, why in skipped:
        print(f"skipped: {name} ({why})")
    print("x aio: the peer's figure over aio's")
    for mode in modes:
        print()
        if mode == "http":
            print(f"HTTP/1.1 keep-alive hello world: wrk -t1 -c{args.connections} -d{duration}s")
        else:
            print(f"echo: echo_client, {args.connections} connections, {ECHO_SIZE}-byte messages, one in flight each")
        print()
        print_table(mode, peers, medians, syscalls, runs)

    if warnings:
        print()
        print("warnings:")
        for w in warnings:
            print(f"  {w}")
    if args.json:
        args.json.write_text(json.dumps({
            "started": started.isoformat(timespec="seconds"),
            "rounds": rounds, "duration_s": duration, "warmup_s": warmup, "quick": args.quick,
            "connections": args.connections, "cpus": list(cpus),
            "build": build_info(args.build_dir), "python": args.python,
            "syscall_method": method, "skipped": dict(skipped), "notes": notes,
            "results": [{"peer": p, "mode": m, "median": medians.get((p, m)), "runs": rs,
                         "syscalls": syscalls.get((p, m))} for (p, m), rs in runs.items()],
            "failures": failures, "warnings": warnings,
        }, indent=2) + "\n")
    if failures:
        print()
        print("failures:")
        for f in failures:
            print(f"  {f}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
