"""Fixtures for telephony tests. The server helpers live in tests/helpers/servers.py
so every test directory can use them; they are re-exported here for convenience."""

from __future__ import annotations

import pytest

from tests.helpers.servers import free_port, run_app

__all__ = ["free_port", "run_app"]


@pytest.fixture
def unused_port() -> int:
    return free_port()
