"""A Twilio webhook form, read in linear time and small enough to be Twilio's.

Twilio posts a few dozen urlencoded fields. Its `RequestValidator` asks the form for
each key's values (`getlist`); starlette's `FormData.getlist` scans every field, so a
forged request with thousands of fields cost quadratic time on the event loop before it
was refused. Here each key's values are found in one dict lookup, and a body with more
fields than Twilio ever sends is refused before anything else is done with it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from urllib.parse import parse_qsl

MAX_FORM_BYTES = 64 * 1024  # Twilio's forms are ~1 KiB; anything bigger is not Twilio
MAX_FORM_FIELDS = 256  # Twilio sends 20-60


class FormTooBig(ValueError):
    """The body is larger, or has more fields, than any Twilio webhook."""


class TwilioForm(Mapping[str, str]):
    """Immutable multi-dict: `form[key]` is the first value, `getlist(key)` all of them."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._lists: dict[str, list[str]] = {}
        for key, value in pairs:
            self._lists.setdefault(key, []).append(value)

    @classmethod
    def parse(cls, body: bytes) -> TwilioForm:
        if len(body) > MAX_FORM_BYTES:
            raise FormTooBig(f"body of {len(body)} bytes")
        # Count before parsing: parse_qsl's own cap raises only after splitting it all.
        fields = body.count(b"&") + 1 if body else 0
        if fields > MAX_FORM_FIELDS:
            raise FormTooBig(f"{fields} fields")
        text = body.decode("utf-8", errors="replace")
        return cls(parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS))

    def getlist(self, key: str) -> list[str]:
        return list(self._lists.get(key, ()))

    def __getitem__(self, key: str) -> str:
        return self._lists[key][0]

    def __iter__(self) -> Iterator[str]:
        return iter(self._lists)

    def __len__(self) -> int:
        return len(self._lists)
