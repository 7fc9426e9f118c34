"""Phone numbers as logs, records and the console show them: masked, one rule everywhere.

+15551234567 -> +1555***4567: country, area and the last four digits are enough to
recognise a caller, not to dial them.
"""

from __future__ import annotations

import re

# E.164 as it appears inside free text (log messages, tracebacks).
_E164_IN_TEXT = re.compile(r"\+\d{9,15}")


def mask_number(value: str | None) -> str:
    """One number, masked. Anything that is not E.164 keeps only its last four
    characters; short values none."""
    if not value:
        return "-"
    if value.startswith("+") and len(value) >= 10:
        return value[:5] + "***" + value[-4:]
    return "***" + value[-4:] if len(value) > 4 else "***"


def mask_numbers_in(text: str) -> str:
    """Every E.164 number inside `text`, masked by `mask_number`."""
    return _E164_IN_TEXT.sub(lambda m: mask_number(m.group(0)), text)
