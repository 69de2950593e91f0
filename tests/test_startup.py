"""Starting the hub and its commands: one clear line for each misconfiguration (exit 2), the
banner only once the port is bound, private database files, operator commands that never
create a database, and a server that drops clients too slow to send a request."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.serving import protocol
from app.testing import Receiver
from tests.conftest import postgres_url
from tests.processes import child_env
from tests.waiting import until


async def billhook(*args: str, **env: str) -> tuple[int, str]:
    """A `billhook` command with BILLHOOK_* from `env` only; exit code and stderr+stdout."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app", *args, env=child_env(**env),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode()


def one_clear_line(out: str, names: str) -> None:
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, out
    assert names in lines[0] and "Traceback" not in out and "serving on" not in out, out


@pytest.mark.slow
async def test_a_port_in_use_is_one_line_naming_the_variable(tmp_path: Path):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = str(taken.getsockname()[1])
    try:
        code, out = await billhook(
            "serve", BILLHOOK_PORT=port, BILLHOOK_DATABASE_URL=f"sqlite:///{tmp_path}/h.db"
        )
    finally:
        taken.close()
    assert code == 2
    one_clear_line(out, "BILLHOOK_PORT")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("BILLHOOK_DATABASE_URL", "mysql://db/billhook"),
        ("BILLHOOK_RETRY_SCHEDULE", "5x"),
        ("BILLHOOK_API_KEY", "k"),
        ("BILLHOOK_ADMIN_TOKEN", "short"),
        ("BILLHOOK_PORT", "eighty"),
        ("BILLHOOK_TIMEZONE", "Mars/Olympus"),
    ],
)
async def test_a_bad_setting_is_one_line_naming_the_variable(var: str, value: str):
    code, out = await billhook("serve", **{var: value})
    assert code == 2
    one_clear_line(out, var)


@contextlib.asynccontextmanager
async def serving(tmp_path: Path, until: str, *args: str, **env: str) -> AsyncIterator[str]:
    """`billhook serve` on a free port and a fresh database: what it printed on stderr up to
    the line holding `until`; stopped on exit."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app", "serve", *args,
        env=child_env(BILLHOOK_PORT="0", BILLHOOK_DATABASE_URL=f"sqlite:///{tmp_path}/h.db",
                      **env),
        stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.stderr is not None
    try:
        said = ""
        while until not in said:
            line = await asyncio.wait_for(proc.stderr.readline(), 30)
            assert line, said
            said += line.decode()
        yield said
    finally:
        proc.terminate()
        await proc.wait()


@pytest.mark.slow
async def test_serving_with_no_key_and_no_tenant_says_how_to_get_one(tmp_path: Path):
    async with serving(tmp_path, "BILLHOOK_API_KEY") as said:
        assert "no API key can call this hub" in said and "BILLHOOK_ADMIN_TOKEN" in said


@pytest.mark.slow
async def test_make_runs_banner_prints_a_console_url_that_signs_in_with_the_printed_key(
    tmp_path: Path,
):
    """What `make run` shows a newcomer: the console's URL and the key that opens it."""
    key = "bh_banner_test_key_0123456789"
    async with serving(tmp_path, "API key:", "--show-key", BILLHOOK_API_KEY=key) as said:
        console = said.split("console: ", 1)[1].split()[0]
        assert f"API key: {key}" in said
        async with httpx.AsyncClient(follow_redirects=True) as client:
            # The banner comes once the port is bound; the app starts right after.
            await until(lambda: _answers(client, console), 30)
            page = await client.get(console)
            assert page.status_code == 200 and "Sign in" in page.text
            token = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
            signed_in = await client.post(str(page.url), data={"csrf": token, "key": key})
            assert signed_in.status_code == 200 and "Overview" in signed_in.text


async def test_the_database_and_its_directory_are_private(tmp_path: Path):
    """They hold the endpoints' signing secrets."""
    from app.store import open_store

    store = await open_store(f"sqlite:///{tmp_path}/new/dir/h.db", migrate_now_ms=0)
    await store.close()
    assert stat.S_IMODE((tmp_path / "new" / "dir").stat().st_mode) == 0o700
    for name in ("h.db", "h.db-wal", "h.db-shm"):
        path = tmp_path / "new" / "dir" / name
        if path.exists():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, name


@pytest.mark.slow
async def test_an_existing_database_others_can_read_is_made_private_and_said(tmp_path: Path):
    """A file made by an older billhook (or copied with a loose umask) kept mode 0644."""
    from app.store import open_store

    url = f"sqlite:///{tmp_path}/h.db"
    store = await open_store(url, migrate_now_ms=0)
    await store.close()
    (tmp_path / "h.db").chmod(0o644)
    async with serving(tmp_path, "serving on") as said:
        assert "made 0600" in said and "h.db" in said
    assert stat.S_IMODE((tmp_path / "h.db").stat().st_mode) == 0o600


@pytest.mark.slow
@pytest.mark.parametrize(
    ("content", "names"),
    [
        (b"this is not a database, just text\n" * 200, "BILLHOOK_DATABASE_URL"),
        (b"SQLite format 3\x00" + b"\xff" * 4000, "BILLHOOK_DATABASE_URL"),
    ],
)
async def test_a_file_that_is_not_a_database_ends_start_up_with_one_line(
    tmp_path: Path, content: bytes, names: str
):
    """It used to hang: the failed connection's thread kept the process alive."""
    (tmp_path / "h.db").write_bytes(content)
    (tmp_path / "h.db").chmod(0o600)
    code, out = await billhook("serve", BILLHOOK_PORT="0",
                               BILLHOOK_DATABASE_URL=f"sqlite:///{tmp_path}/h.db")  # fmt: skip
    assert code == 2
    one_clear_line(out, names)


@pytest.mark.slow
async def test_serving_without_a_secret_key_is_one_line_saying_how_to_make_one(tmp_path: Path):
    code, out = await billhook(
        "serve", BILLHOOK_PORT="0", BILLHOOK_SECRET_KEY="",
        BILLHOOK_DATABASE_URL=f"sqlite:///{tmp_path}/h.db",
    )  # fmt: skip
    assert code == 2
    one_clear_line(out, "BILLHOOK_SECRET_KEY")
    assert "billhook secret-key" in out
    code, out = await billhook("secret-key")
    assert code == 0 and len(out.strip()) >= 32


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [["events"], ["endpoints"], ["replay", "--endpoint", "ep_x", "--since", "2026-11-01"],
     ["cancel-pending", "ep_x"], ["invoices", "list"], ["invoices", "finalize"]],
)  # fmt: skip
async def test_operator_commands_never_create_a_database(tmp_path: Path, command: list[str]):
    """On a local database (--database) a missing one is an error naming it, never a new empty
    hub; by default they talk to a hub over HTTP and touch no database at all."""
    missing = tmp_path / "nothing-here.db"
    code, out = await billhook(*command, "--database", f"sqlite:///{missing}")
    assert code == 2 and not missing.exists(), out
    one_clear_line(out, "--database")
    code, out = await billhook(
        *command, BILLHOOK_DATABASE_URL=f"sqlite:///{missing}", BILLHOOK_URL="http://127.0.0.1:9"
    )
    assert code == 1 and not missing.exists(), out
    one_clear_line(out, "no API key: set BILLHOOK_API_KEY or pass --key")


async def test_clients_too_slow_to_send_a_request_are_dropped():
    """1,000 connections that send half a request's headers, or headers and half a body, are
    closed after the read timeout instead of staying open: slow clients cannot hold the
    server's sockets. Those that never finished their headers are told 408."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass  # the body never completes

    guarded = protocol(read_timeout=0.5)
    async with Receiver(app, http=guarded) as server:
        streams = []
        for n in range(1000):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            if n % 2:
                writer.write(b"POST /v1/events HTTP/1.1\r\nhost: x\r\ncontent-length: 99\r\n\r\n{")
            else:
                writer.write(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")  # headers never end
            streams.append((reader, writer))
        try:
            answers = await asyncio.wait_for(
                asyncio.gather(*(reader.read() for reader, _ in streams)), 60
            )
        finally:
            for _, writer in streams:
                writer.close()
    assert all(a.startswith(b"HTTP/1.1 408 ") for a in answers[::2])
    assert all(a == b"" for a in answers[1::2])  # cut off mid-body: closed


@pytest.mark.slow
async def test_behind_a_trusted_tls_proxy_the_console_cookie_is_secure(tmp_path: Path):
    """The proxy ends TLS and says so in X-Forwarded-Proto: the session cookie must then be
    Secure. From an address not in BILLHOOK_FORWARDED_ALLOW_IPS the header is not believed."""
    key = "bh_proxy_test_key_0123456789"
    for allowed, secure in (("127.0.0.1", True), ("192.0.2.1", False)):
        async with serving(tmp_path, "serving on", BILLHOOK_API_KEY=key,
                           BILLHOOK_FORWARDED_ALLOW_IPS=allowed) as said:  # fmt: skip
            base = said.split("serving on ", 1)[1].split()[0]
            headers = {"x-forwarded-proto": "https", "x-forwarded-for": "198.51.100.7"}
            async with httpx.AsyncClient(base_url=base, headers=headers) as client:
                await until(lambda: _answers(client), 30)
                form = await client.get("/console/sign-in")
                token = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
                client.cookies.clear()  # as the browser sends it over https, Secure or not
                signed_in = await client.post(
                    "/console/sign-in", data={"csrf": token, "key": key},
                    headers={"cookie": f"billhook_console_csrf={token}"},
                )  # fmt: skip
            cookie = next(
                c
                for c in signed_in.headers.get_list("set-cookie")
                if c.startswith("billhook_console=")
            )
            assert ("secure" in cookie.lower().split("; ")) is secure, (allowed, cookie)


async def _answers(client: httpx.AsyncClient, url: str = "/healthz") -> bool:
    try:
        await client.get(url)
    except httpx.TransportError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize(
    ("where", "names"),
    [
        ("postgres@127.0.0.1:1/test", "cannot reach PostgreSQL"),  # nothing listens on port 1
        ("postgres@127.0.0.1:5432/billhook_no_such_db", "createdb"),
        ("no_such_role@127.0.0.1:5432/test", "create the role"),
    ],
)
async def test_a_postgres_that_cannot_be_used_ends_start_up_with_one_line(where: str, names: str):
    if postgres_url() is None:
        pytest.skip("PostgreSQL tests run when BILLHOOK_TEST_POSTGRES_URL is set")
    code, out = await billhook(
        "serve", BILLHOOK_PORT="0", BILLHOOK_DATABASE_URL=f"postgresql://{where}"
    )
    assert code == 2 and "serving on" not in out
    one_clear_line(out, names)
