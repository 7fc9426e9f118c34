"""Suite-wide hooks: how `make test` spreads the tests over xdist workers
(tests/helpers/schedule.py says why)."""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest

from tests.helpers.schedule import SPEECH_CALLS, SpeechSlots, dispatch_order

SLOTS = pytest.StashKey[SpeechSlots]()


def _is_speech(item: pytest.Item) -> bool:
    return item.get_closest_marker("speech_call") is not None


def pytest_configure(config: pytest.Config) -> None:
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:  # an xdist worker: use the controller's slots
        if "speech_slots" in workerinput:
            config.stash[SLOTS] = SpeechSlots(workerinput["speech_slots"])
    elif (getattr(config.option, "numprocesses", None) or 0) > 0:  # the xdist controller
        config.stash[SLOTS] = SpeechSlots.create(SPEECH_CALLS)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:  # xdist: what a worker is started with
    slots = node.config.stash.get(SLOTS, None)
    if slots is not None:
        node.workerinput["speech_slots"] = str(slots.path)


def pytest_unconfigure(config: pytest.Config) -> None:
    if getattr(config, "workerinput", None) is None and SLOTS in config.stash:
        config.stash[SLOTS].remove()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Every worker computes the same order from the same collection.
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    items[:] = dispatch_order(items, lambda i: i.nodeid, _is_speech, workers)


@pytest.hookimpl(wrapper=True, tryfirst=True)  # outside pytest-timeout: waiting is not the test
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, Any, Any]:
    slots = item.config.stash.get(SLOTS, None)
    if slots is None or not _is_speech(item):
        return (yield)
    slots.acquire()
    try:
        return (yield)
    finally:
        slots.release()
