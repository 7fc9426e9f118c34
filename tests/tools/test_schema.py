"""Type hints <-> JSON schema and JSON -> Python coercion, below the decorator."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import pytest

from tools.schema import CoercionError, coerce, parse_docstring, type_schema


@pytest.mark.parametrize(
    ("tp", "schema"),
    [
        (str, {"type": "string"}),
        (bool, {"type": "boolean"}),
        (int, {"type": "integer"}),
        (float, {"type": "number"}),
        (dt.date, {"type": "string", "format": "date"}),
        (dt.datetime, {"type": "string", "format": "date-time"}),
        (dt.time, {"type": "string", "format": "time"}),
        (list[str], {"type": "array", "items": {"type": "string"}}),
        (list[int] | None, {"type": "array", "items": {"type": "integer"}}),
        (tuple[int, ...], {"type": "array", "items": {"type": "integer"}}),
        (dict[str, int], {"type": "object", "additionalProperties": {"type": "integer"}}),
        (dict[str, Any], {"type": "object"}),
        (Literal[1, 2], {"enum": [1, 2], "type": "integer"}),
        (int | str, {"anyOf": [{"type": "integer"}, {"type": "string"}]}),
    ],
)
def test_type_schema(tp: Any, schema: dict) -> None:
    assert type_schema(tp) == schema


@pytest.mark.parametrize("tp", [set[int], dict[int, str], tuple[int, str], bytes])
def test_type_schema_rejects_what_json_cannot_say(tp: Any) -> None:
    with pytest.raises(TypeError):
        type_schema(tp)


@pytest.mark.parametrize(
    ("tp", "value", "expected"),
    [
        (str, 4567, "4567"),
        (int, 3.0, 3),
        (int, " 12 ", 12),
        (float, "2.5", 2.5),
        (bool, "No", False),
        (dt.date, "2026-11-27T00:00:00", dt.date(2026, 11, 27)),
        (
            dt.datetime,
            "2026-11-27T10:30:00+00:00",
            dt.datetime(2026, 11, 27, 10, 30, tzinfo=dt.UTC),
        ),
        (dt.time, "14:30", dt.time(14, 30)),
        (dict[str, int], {"a": "1"}, {"a": 1}),
        (int | str, "x", "x"),
        (tuple[int, ...], [1, "2"], (1, 2)),
        (str | None, None, None),
    ],
)
def test_coerce(tp: Any, value: Any, expected: Any) -> None:
    assert coerce(tp, value) == expected


@pytest.mark.parametrize(
    ("tp", "value", "message"),
    [
        (str, None, "expected str, got null"),
        (str, ["a"], "expected a string"),
        (int, 2.5, "expected an integer"),
        (bool, "maybe", "expected true or false"),
        (dt.date, 20261127, "expected an ISO date"),
        (dt.time, "2pm", "expected a time like 14:30"),
        (list[int], [1, "x"], "item 1: expected an integer"),
        (dict[str, int], [1], "expected an object"),
    ],
)
def test_coerce_errors(tp: Any, value: Any, message: str) -> None:
    with pytest.raises(CoercionError, match=message):
        coerce(tp, value)


def test_parse_docstring_sections() -> None:
    doc = """Summary line.

        Body text
        wrapped.

        Args:
            first: One.
            second (int): Two, which is
                long.
            *rest: Ignored star.

        Raises:
            ValueError: not a parameter.

        Example:
            foo: not a parameter either
        """
    description, params = parse_docstring(doc)
    assert description == "Summary line.\n\nBody text wrapped."
    assert params == {"first": "One.", "second": "Two, which is long.", "rest": "Ignored star."}
    assert parse_docstring(None) == ("", {})
