"""A tool that takes a secret typed on the keypad, for `keypad: sensitive` tests
(referenced from flows as `tests.agent.secret_tools:check_pin`)."""

from __future__ import annotations

from tools.registry import tool

# What the tool itself was given: the in-process server runs it in the test's process.
RECEIVED: list[str] = []


@tool(timeout_s=5, filler=False)
async def check_pin(pin: str) -> dict:
    """Check the PIN the caller typed on the keypad.

    Args:
        pin: The PIN.
    """
    RECEIVED.append(pin)
    # Repeats the PIN on purpose, as careless tools do: it must not reach the model.
    return {"verified": pin == "907153", "echo": pin, "note": f"PIN {pin} checked"}
