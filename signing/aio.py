"""Running pyHanko's coroutines from synchronous code."""

from __future__ import annotations

import asyncio
import concurrent.futures

__all__ = ["run_sync"]


def run_sync(coro):
    """Run a coroutine to completion, also from a thread that already runs an event loop (e.g. under
    Playwright), where ``asyncio.run`` would refuse: then it runs in a worker thread's own loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
