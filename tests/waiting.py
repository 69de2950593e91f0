"""The suite's one way to wait for work that runs elsewhere (a worker, a process, a browser):
poll a condition until it holds, failing after a deadline. Never a bare sleep."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable

Condition = Callable[[], bool | Awaitable[bool]] | Callable[[], object]


async def until(
    condition: Condition, seconds: float = 30.0, interval: float = 0.05, what: str = ""
) -> None:
    """Poll `condition()` (a plain or an async function) until it is true; fail with `what`
    (or the condition's name) once `seconds` have passed."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        found = condition()
        if inspect.isawaitable(found):
            found = await found
        if found:
            return
        if asyncio.get_running_loop().time() >= deadline:
            raise AssertionError(f"not reached within {seconds:g} s: {what or condition}")
        await asyncio.sleep(interval)
