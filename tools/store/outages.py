"""Storage that does not answer becomes `StoreUnavailable`, one error for every backend.

A tool then tells the caller "our booking system is not answering right now" instead of
handing the model a driver's exception text, and the agent knows it may try again.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from tools.store.base import StoreUnavailable

P = ParamSpec("P")
R = TypeVar("R")


def unavailable_on(
    is_outage: Callable[[BaseException], bool],
) -> Callable[[Callable[P, Coroutine[Any, Any, R]]], Callable[P, Coroutine[Any, Any, R]]]:
    """Decorate a store method: an exception `is_outage` accepts becomes StoreUnavailable."""

    def decorate(method: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, Coroutine[Any, Any, R]]:
        @functools.wraps(method)
        async def answering(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return await method(*args, **kwargs)
            except StoreUnavailable:
                raise
            except Exception as exc:
                if is_outage(exc):
                    raise StoreUnavailable(exc) from exc
                raise

        return answering

    return decorate
