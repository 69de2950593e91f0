"""A PostgreSQL primary and its synchronous streaming standby on this machine, for the failover
test: two clusters of the installed PostgreSQL on free ports in a scratch directory, built with
the stock tools (initdb, pg_basebackup -R, pg_ctl) the way docs/deploy.md's HA section builds
them. Run as the `postgres` user when the tests run as root (PostgreSQL refuses root)."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from tests.waiting import until

STANDBY_NAME = "standby1"


def _bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.skip("no PostgreSQL server binaries (/usr/lib/postgresql/*/bin)")
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Pair:
    """Where each cluster lives, and what to tell billhook: both hosts, the writable one."""

    root: Path
    bin: Path
    primary_port: int
    standby_port: int

    @property
    def url(self) -> str:
        hosts = f"127.0.0.1:{self.primary_port},127.0.0.1:{self.standby_port}"
        return f"postgresql://postgres@{hosts}/postgres?target_session_attrs=read-write"

    def run(self, *command: str) -> None:
        """A PostgreSQL tool, as the postgres user when we are root."""
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=120)

    def tool(self, name: str) -> str:
        return str(self.bin / name)

    def kill_primary(self) -> None:
        """SIGKILL the primary's postmaster: no shutdown checkpoint, no goodbye to clients."""
        pid = int((self.root / "primary" / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)

    def promote(self) -> None:
        self.run(self.tool("pg_ctl"), "promote", "-w", "-D", str(self.root / "standby"))

    def stop(self) -> None:
        for name in ("standby", "primary"):
            data = self.root / name
            if (data / "postmaster.pid").exists():
                with contextlib.suppress(subprocess.SubprocessError):
                    self.run(self.tool("pg_ctl"), "stop", "-m", "immediate", "-D", str(data))


def _conf(data: Path, lines: list[str]) -> None:
    with (data / "postgresql.auto.conf").open("a") as conf:
        conf.write("\n".join(lines) + "\n")


@contextlib.asynccontextmanager
async def primary_and_standby() -> AsyncIterator[Pair]:
    """Started, the standby streaming and synchronous (a commit returns only once the standby
    has it); stopped and removed at the end."""
    pair = await asyncio.to_thread(_scratch)
    try:
        await asyncio.to_thread(_start_primary, pair)
        await asyncio.to_thread(_start_standby, pair)
        await until(lambda: _synchronous(pair), 60, what="the standby streaming synchronously")
        yield pair
    finally:
        await asyncio.to_thread(pair.stop)
        await asyncio.to_thread(shutil.rmtree, pair.root, True)


def _scratch() -> Pair:
    """A directory the postgres user can work in, and two free ports."""
    root = Path(tempfile.mkdtemp(prefix="billhook-ha-"))
    root.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    return Pair(root, _bin(), _free_port(), _free_port())


def _start_primary(pair: Pair) -> None:
    data = pair.root / "primary"
    pair.run(pair.tool("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    _conf(data, [
        f"port = {pair.primary_port}", "listen_addresses = '127.0.0.1'",
        f"unix_socket_directories = '{pair.root}'", "wal_level = replica", "max_wal_senders = 4",
        f"synchronous_standby_names = '{STANDBY_NAME}'", "synchronous_commit = on",
    ])  # fmt: skip
    with (data / "pg_hba.conf").open("a") as hba:
        hba.write("host replication postgres 127.0.0.1/32 trust\n")
    pair.run(pair.tool("pg_ctl"), "start", "-w", "-D", str(data), "-l", str(pair.root / "p.log"))


def _start_standby(pair: Pair) -> None:
    """A base backup that writes its own standby.signal and primary_conninfo (-R); once
    promoted it must not wait for a standby of its own, so it names none."""
    data = pair.root / "standby"
    conninfo = f"host=127.0.0.1 port={pair.primary_port} application_name={STANDBY_NAME}"
    pair.run(pair.tool("pg_basebackup"), "-d", conninfo, "-D", str(data), "-R", "-X", "stream")
    _conf(data, [f"port = {pair.standby_port}", "synchronous_standby_names = ''"])
    pair.run(pair.tool("pg_ctl"), "start", "-w", "-D", str(data), "-l", str(pair.root / "s.log"))


async def _synchronous(pair: Pair) -> bool:
    conn = await asyncpg.connect(pair.url)
    try:
        state = await conn.fetchval("SELECT sync_state FROM pg_stat_replication")
    finally:
        await conn.close()
    return bool(state == "sync")
