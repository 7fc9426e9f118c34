"""Keypad digits the model must never see: a flow with `keypad: sensitive`.

A PIN or card number typed on the keypad is held by the call, and the model only hears
a reference to it: "(The caller typed 6 digits on the keypad; they are secret: pass the
value `keypad:1` to a tool that needs them)". When the model calls a tool with
`keypad:1` in its arguments, the runner swaps in the digits just before the tool runs;
what is recorded, logged and sent back to the model keeps the reference, and a tool
result that repeats the digits is turned back into the reference on its way out.
Records show the entry as `[keypad] ****** (keypad:1)`.
"""

from __future__ import annotations

import re
from typing import Any

from tools.registry import ToolArgumentError

PREFIX = "keypad:"
_REF = re.compile(r"\bkeypad:(\d+)\b")
HIDDEN_DIGIT = "•"  # what a sensitive call records for each key pressed
# Scrubbing a result replaces the digits wherever they stand as a number of their own;
# one or two digits would match times and counts by chance, so those only as a whole value.
_MIN_SCRUB_INSIDE = 3


def masked(digits: str) -> str:
    return "*" * len(digits)


def model_text(ref: str, digits: str) -> str:
    """What the model is told instead of the digits."""
    return (
        f"(The caller typed {len(digits)} digits on the keypad; they are secret: "
        f"pass the value `{ref}` to a tool that needs them)"
    )


class KeypadSecrets:
    """One call's sensitive keypad entries, by reference (`keypad:1`, `keypad:2`, ...)."""

    def __init__(self) -> None:
        self._values: list[str] = []
        self._patterns: list[tuple[re.Pattern[str], str]] = []  # (digits as a number, ref)

    def add(self, digits: str) -> str:
        if not digits:
            raise ValueError("no digits to keep")
        self._values.append(digits)
        ref = f"{PREFIX}{len(self._values)}"
        if len(digits) >= _MIN_SCRUB_INSIDE:
            self._patterns.append((re.compile(rf"(?<!\d){re.escape(digits)}(?!\d)"), ref))
            # Longest first: a secret inside a longer one must not split it.
            self._patterns.sort(key=lambda p: -len(p[0].pattern))
        return ref

    @property
    def refs(self) -> list[str]:
        return [f"{PREFIX}{i}" for i in range(1, len(self._values) + 1)]

    # -- into the tool ------------------------------------------------------------------
    def resolve(self, tool: str, arguments: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """The arguments with every reference replaced by its digits, and whether any was.
        An unknown reference is the model's mistake: ToolArgumentError, said so it can fix it."""
        used = False

        def swap(match: re.Match[str]) -> str:
            nonlocal used
            index = int(match.group(1))
            if not 1 <= index <= len(self._values):
                typed = ", ".join(self.refs) or "nothing yet"
                raise ToolArgumentError(
                    tool, f"unknown keypad reference {match.group(0)!r}; the caller has typed: {typed}"
                )
            used = True
            return self._values[index - 1]

        def walk(value: Any) -> Any:
            if isinstance(value, str):
                return _REF.sub(swap, value) if PREFIX in value else value
            if isinstance(value, dict):
                return {k: walk(v) for k, v in value.items()}
            if isinstance(value, list):
                return [walk(v) for v in value]
            return value

        resolved = walk(arguments)
        return resolved, used

    # -- out of the tool ----------------------------------------------------------------
    def scrub(self, value: Any) -> Any:
        """`value` (a result, an error text) with the secret digits put back as references."""
        if not self._values:
            return value
        if isinstance(value, str):
            return self._scrub_text(value)
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            text = str(value)
            return self._ref_of(text) or value
        if isinstance(value, dict):
            return {k: self.scrub(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.scrub(v) for v in value]
        return value

    def _ref_of(self, text: str) -> str | None:
        for i, digits in enumerate(self._values, start=1):
            if text == digits:
                return f"{PREFIX}{i}"
        return None

    def _scrub_text(self, text: str) -> str:
        whole = self._ref_of(text)
        if whole is not None:
            return whole
        for pattern, ref in self._patterns:
            text = pattern.sub(ref, text)
        return text
