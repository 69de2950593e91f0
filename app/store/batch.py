"""Group commit: writes from many concurrent callers share one transaction and one fsync."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from app.errors import StoreUnavailable
from app.store.connector import Connector, IntegrityError, Tx

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    """Queue items; one task writes everything queued so far in a single transaction.

    No timer: while one transaction commits, the next batch accumulates by itself, so an idle
    hub answers at once and a busy one amortises each fsync over many callers. A backend with
    many writers (PostgreSQL: `connector.writers`) keeps several batches committing at once, so
    one batch's fsync does not hold up the next; SQLite has one writer. A batch that
    fails is retried item by item, so one bad item cannot fail its neighbours; an item refused
    by a unique index is tried once more, since another process may just have committed the
    same idempotency key (the retry reads it, and answers a repeat).

    `direct`, if given, is tried first with no transaction opened for it: it writes the batch
    by itself (PostgreSQL: one statement, one round trip) or answers None, and a unique index
    refusing it (a repeat) sends the batch the careful way, `apply` in a transaction.
    """

    def __init__(
        self,
        connector: Connector,
        apply: Callable[[Tx, list[T]], Awaitable[list[R]]],
        max_batch: int = 512,
        direct: Callable[[list[T]], Awaitable[list[R] | None]] | None = None,
    ) -> None:
        self._connector = connector
        self._apply = apply
        self._direct = direct
        self._max_batch = max_batch
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._slots = asyncio.Semaphore(connector.writers)
        self._committing: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> R:
        if self._closing:
            raise RuntimeError("the store is closing")
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="group-commit")
        return await future

    async def _run(self) -> None:
        while self._queue or not self._closing:
            if not self._queue:
                await self._wake.wait()
                self._wake.clear()
                continue
            await self._slots.acquire()  # a free writer: take what has queued up meanwhile
            batch = self._queue[: self._max_batch]
            del self._queue[: self._max_batch]
            task = asyncio.create_task(self._commit_in_slot(batch))
            self._committing.add(task)
            task.add_done_callback(self._committing.discard)
        if self._committing:
            await asyncio.gather(*self._committing)

    async def _commit_in_slot(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            await self._commit(batch)
        finally:
            self._slots.release()

    async def _commit(self, batch: list[tuple[T, asyncio.Future[R]]], again: bool = True) -> None:
        try:
            results = await self._write([item for item, _ in batch])
        except StoreUnavailable as exc:  # perhaps committed: a retry here could write twice
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        except Exception as exc:
            if len(batch) > 1:
                for one in batch:
                    await self._commit([one])
                return
            if again and isinstance(exc, IntegrityError):
                await self._commit(batch, again=False)
                return
            if not batch[0][1].done():
                batch[0][1].set_exception(exc)
            return
        if len(results) != len(batch):  # a bug in `apply`: no caller may wait forever on it
            error = RuntimeError(f"a batch of {len(batch)} answered {len(results)} results")
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    async def _write(self, items: list[T]) -> list[R]:
        return await written(self._connector, self._apply, self._direct, items)

    async def close(self) -> None:
        """Commit what is queued, then stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task


async def written(
    connector: Connector,
    apply: Callable[[Tx, list[T]], Awaitable[list[R]]],
    direct: Callable[[list[T]], Awaitable[list[R] | None]] | None,
    items: list[T],
) -> list[R]:
    """`items` written the direct way when it answers, else by `apply` in a transaction (also
    when a unique index refused the direct write: `apply` reads what is already there)."""
    if direct is not None:
        with contextlib.suppress(IntegrityError):
            done = await direct(items)
            if done is not None:
                return done

    async def work(tx: Tx) -> list[R]:
        return await apply(tx, items)

    return await connector.transact(work)
