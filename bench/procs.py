"""Processes the benchmark starts and stops: the hub, the receiver, Redis, peers' workers.

On a machine with two or more CPUs the hub (or a peer's worker) runs on CPU 0 and everything
else (receiver, load generator, Redis) on CPU 1, so the process under test is not perturbed
by the scheduler moving it around; docs/performance.md states this condition.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
CPUS = os.cpu_count() or 1
UNDER_TEST = {0} if CPUS >= 2 else None
AUXILIARY = set(range(1, CPUS)) if CPUS >= 2 else None
API_KEY = "bh_bench_key_0123456789"
SECRET_KEY = "bsk_bench_secret_key_0123456789_0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run_auxiliary(args: Sequence[str], cpus: set[int] | None = AUXILIARY) -> str:
    """Run a command (a load generator) to completion, by default on the auxiliary CPUs."""

    def pin() -> None:
        if cpus is not None:
            os.sched_setaffinity(0, cpus)

    done = subprocess.run(list(args), cwd=ROOT, capture_output=True, text=True, preexec_fn=pin)
    if done.returncode != 0:
        raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


def spawn(
    args: Sequence[str], log: Path, cpus: set[int] | None, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    def pin() -> None:
        if cpus is not None:
            os.sched_setaffinity(0, cpus)

    return subprocess.Popen(
        list(args),
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        preexec_fn=pin,
        start_new_session=True,
    )


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, wait: float = 20) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_until(check: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.05)
    raise TimeoutError(f"{what} not ready after {seconds:.0f}s")


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the process's peak resident set size."""
    return _status_mb(pid, "VmHWM")


def rss_mb(pid: int) -> float:
    """VmRSS: the process's resident set size now."""
    return _status_mb(pid, "VmRSS")


def _status_mb(pid: int, field: str) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"{field}:\s+(\d+) kB", status)
    return int(match.group(1)) / 1024 if match else float("nan")


@dataclass
class Receiver:
    workdir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Receiver:
        args = [sys.executable, "-m", "bench.receiver", "--port", str(self.port)]
        self.proc = spawn(args, self.workdir / "receiver.log", AUXILIARY)
        wait_until(lambda: httpx.get(f"{self.url}/stats").status_code == 200, 15, "receiver")
        return self

    def stats(self, ids: bool = False) -> dict[str, Any]:
        answer: dict[str, Any] = httpx.get(
            f"{self.url}/stats", params={"ids": "1"} if ids else None, timeout=30
        ).json()
        return answer

    def reset(self) -> None:
        httpx.post(f"{self.url}/reset")

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)


@dataclass
class Hub:
    """A real `billhook serve` process (or `billhook worker`: `role`) on a database."""

    workdir: Path
    db: str  # BILLHOOK_DATABASE_URL
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    url: str = ""
    role: str = "serve"
    cpus: set[int] | None = field(default_factory=lambda: UNDER_TEST)
    _mark: int = 0

    def start(self) -> Hub:
        self.launch()
        return self.ready()

    @property
    def log(self) -> Path:
        return self.workdir / f"hub-{self.role}-{id(self)}.log"

    def launch(self) -> None:
        log = self.log
        env = {
            "BILLHOOK_DATABASE_URL": self.db,
            "BILLHOOK_PORT": "0",
            "BILLHOOK_API_KEY": API_KEY,
            "BILLHOOK_SECRET_KEY": SECRET_KEY,
            "BILLHOOK_EGRESS_ALLOW": "127.0.0.0/8",
            **self.env,
        }
        self._mark = log.stat().st_size if log.exists() else 0
        self.proc = spawn([sys.executable, "-m", "app", self.role], log, self.cpus, env)

    def ready(self) -> Hub:
        log, mark = self.log, self._mark
        if self.role == "worker":
            wait_until(lambda: b"billhook running" in log.read_bytes()[mark:], 30, "worker")
            return self
        wait_until(lambda: self._serving(log, mark), 30, "hub")
        wait_until(lambda: httpx.get(f"{self.url}/healthz").status_code == 200, 30, "hub")
        return self

    def _serving(self, log: Path, mark: int) -> bool:
        with log.open("rb") as handle:
            handle.seek(mark)
            found = re.search(rb"serving on (http://\S+)", handle.read())
        if found:
            self.url = found.group(1).decode()
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"hub exited with {self.proc.returncode}; see {log}")
        return bool(found)

    def client(self) -> httpx.Client:
        headers = {"authorization": f"Bearer {API_KEY}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None:
            stop(self.proc, sig)


@contextlib.contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    """A private Redis (the machine's package), started and stopped by the benchmark."""
    port = free_port()
    args = [
        "redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(workdir),
    ]
    proc = spawn(args, workdir / "redis.log", AUXILIARY)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        wait_until(lambda: _redis_ping(port), 10, "redis")
        yield url
    finally:
        stop(proc)


def _redis_ping(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(16).startswith(b"+PONG")
