"""What the Store needs from a database: named statements in transactions, and reads."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_random_exponential

Params = Mapping[str, Any]
Row = Mapping[str, Any]
R = TypeVar("R")


class Tx(Protocol):
    async def execute(self, name: str, params: Params | None = None) -> None: ...
    async def executemany(self, name: str, rows: Sequence[Params]) -> None: ...
    async def insert(self, groups: Mapping[str, Sequence[Params]], then: str | None = None) -> None:
        """Rows of several plain INSERT queries (by name), then the parameterless `then` (a
        NOTIFY: its effect comes at commit), in as few round trips as the backend allows."""

    async def fetch(self, name: str, params: Params | None = None) -> list[Row]: ...
    async def fetchrow(self, name: str, params: Params | None = None) -> Row | None: ...
    def ids(self, values: Sequence[str]) -> Any: ...


Work = Callable[[Tx], Awaitable[R]]


def inserting(groups: Mapping[str, Sequence[Params]], then: str | None = None) -> Work[None]:
    """Transaction work that only writes `groups` (`Connector.write` done the long way)."""

    async def work(tx: Tx) -> None:
        await tx.insert(groups, then)

    return work


class Connector(Protocol):
    dialect: str
    writers: int  # transactions that may write at once (SQLite 1)

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def migrate(self, scripts: Sequence[tuple[int, str, str]], now_ms: int) -> list[int]: ...
    async def transact(self, work: Work[R], durable: bool = True) -> R: ...
    async def write(self, groups: Mapping[str, Sequence[Params]], then: str | None = None) -> None:
        """`Tx.insert` committed on its own (durably): on PostgreSQL one statement in its own
        transaction, one round trip with no BEGIN or COMMIT; StoreUnavailable if the
        connection is lost meanwhile (perhaps committed: never sent again)."""

    async def fetch(self, name: str, params: Params | None = None) -> list[Row]: ...
    async def fetchrow(self, name: str, params: Params | None = None) -> Row | None: ...
    def ids(self, values: Sequence[str]) -> Any: ...
    def listen(self, channel: str, wake: Callable[[], None]) -> None: ...


class StoreMissing(Exception):
    """There is no database where the URL points (and it was not to be created)."""


class StoreUnusable(Exception):
    """The database cannot be used as it is (not a database, unknown role, wrong password…):
    no retry will help; the message, one line, names the setting and the fix."""


class IntegrityError(Exception):
    """A unique or foreign-key constraint refused a write (the same type on every backend)."""


def retrying(transient: Callable[[BaseException], bool]) -> AsyncRetrying:
    """Sub-second retries of a whole transaction on lock contention or a dropped connection.

    Only infrastructure hiccups are retried; the work function runs again from the start, so
    it must not have effects outside the transaction.
    """
    return AsyncRetrying(
        retry=retry_if_exception(transient),
        wait=wait_random_exponential(multiplier=0.01, max=0.25),
        stop=stop_after_attempt(6),
        reraise=True,
    )
