"""Python type hints -> JSON schema, and model-supplied JSON -> Python values.

Both directions live together so a type the schema advertises is always a type the
coercer accepts: the model only ever sees what `invoke` can actually take.
"""

from __future__ import annotations

import datetime as dt
import enum
import inspect
import re
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, Union

__all__ = ["CoercionError", "Param", "coerce", "parse_docstring", "type_schema"]


class CoercionError(ValueError):
    """A JSON value could not be turned into the annotated Python type."""


@dataclass(frozen=True)
class Param:
    """One model-visible parameter of a tool."""

    name: str
    annotation: Any
    required: bool
    default: Any
    description: str
    schema: dict[str, Any]


_NONE = type(None)
_TRUE = {"true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off"}


def _union_args(tp: Any) -> tuple[Any, ...] | None:
    origin = typing.get_origin(tp)
    if origin is Union or origin is types.UnionType:
        return typing.get_args(tp)
    return None


def strip_optional(tp: Any) -> tuple[Any, bool]:
    """`X | None` -> (X, True); anything else -> (tp, False)."""
    args = _union_args(tp)
    if args is None or _NONE not in args:
        return tp, False
    rest = tuple(a for a in args if a is not _NONE)
    if len(rest) == 1:
        return rest[0], True
    return Union[rest], True  # noqa: UP007 - building a Union from a runtime tuple


def _literal_type(values: tuple[Any, ...]) -> str | None:
    kinds = {type(v) for v in values}
    if kinds == {str}:
        return "string"
    if kinds == {bool}:
        return "boolean"
    if kinds <= {int}:
        return "integer"
    if kinds <= {int, float}:
        return "number"
    return None


def type_schema(tp: Any) -> dict[str, Any]:
    """JSON schema for one annotation; raises TypeError for what we cannot express."""
    inner, _ = strip_optional(tp)
    if inner is not tp:
        return type_schema(inner)
    union = _union_args(tp)
    if union is not None:
        return {"anyOf": [type_schema(a) for a in union]}
    # bool before int and datetime before date: both are subclasses.
    simple: dict[Any, dict[str, Any]] = {
        str: {"type": "string"},
        bool: {"type": "boolean"},
        int: {"type": "integer"},
        float: {"type": "number"},
        dt.datetime: {"type": "string", "format": "date-time"},
        dt.date: {"type": "string", "format": "date"},
        dt.time: {"type": "string", "format": "time"},
    }
    if tp in simple:
        return dict(simple[tp])
    origin = typing.get_origin(tp)
    if origin is Literal:
        values = typing.get_args(tp)
        schema: dict[str, Any] = {"enum": list(values)}
        kind = _literal_type(values)
        if kind:
            schema["type"] = kind
        return schema
    if inspect.isclass(tp) and issubclass(tp, enum.Enum):
        values = tuple(m.value for m in tp)
        schema = {"enum": list(values)}
        kind = _literal_type(values)
        if kind:
            schema["type"] = kind
        return schema
    if tp is list or origin is list:
        args = typing.get_args(tp)
        return {"type": "array", "items": type_schema(args[0]) if args else {}}
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": type_schema(args[0])}
        raise TypeError(f"only homogeneous tuple[X, ...] is supported, not {tp!r}")
    if tp is dict or origin is dict:
        args = typing.get_args(tp)
        schema = {"type": "object"}
        if len(args) == 2:
            if args[0] is not str:
                raise TypeError(f"JSON object keys are strings; {tp!r} has {args[0]!r} keys")
            if args[1] is not Any:
                schema["additionalProperties"] = type_schema(args[1])
        return schema
    raise TypeError(f"cannot describe type {tp!r} as JSON schema")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or repr(tp)


def coerce(tp: Any, value: Any) -> Any:
    """Turn a JSON-decoded `value` into `tp`, leniently where the intent is clear."""
    inner, optional = strip_optional(tp)
    if value is None:
        if optional:
            return None
        raise CoercionError(f"expected {_type_name(inner)}, got null")
    if inner is not tp:
        return coerce(inner, value)
    union = _union_args(tp)
    if union is not None:
        errors = []
        for option in union:
            try:
                return coerce(option, value)
            except CoercionError as exc:
                errors.append(str(exc))
        raise CoercionError("; ".join(errors))
    if tp is Any:
        return value
    if tp is str:
        # Models often send numbers for string fields (an order number as 4567).
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise CoercionError(f"expected a string, got {type(value).__name__}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise CoercionError(f"expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise CoercionError(f"expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+\s*", value):
            return int(value)
        raise CoercionError(f"expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise CoercionError(f"expected a number, got {value!r}")
    if tp is dt.datetime:
        if isinstance(value, dt.datetime):
            return value
        if isinstance(value, str):
            try:
                return dt.datetime.fromisoformat(value.strip())
            except ValueError:
                pass
        raise CoercionError(f"expected an ISO date-time like 2026-11-27T10:00, got {value!r}")
    if tp is dt.date:
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            text = value.strip()
            try:
                return dt.date.fromisoformat(text)
            except ValueError:
                pass
            try:  # "2026-11-27T00:00:00" still names a day
                return dt.datetime.fromisoformat(text).date()
            except ValueError:
                pass
        raise CoercionError(f"expected an ISO date like 2026-11-27, got {value!r}")
    if tp is dt.time:
        if isinstance(value, dt.time):
            return value
        if isinstance(value, str):
            try:
                return dt.time.fromisoformat(value.strip())
            except ValueError:
                pass
        raise CoercionError(f"expected a time like 14:30, got {value!r}")
    origin = typing.get_origin(tp)
    if origin is Literal:
        choices = typing.get_args(tp)
        if value in choices:
            return value
        if isinstance(value, str):  # "Email" for Literal["email"]
            for choice in choices:
                if isinstance(choice, str) and choice.lower() == value.strip().lower():
                    return choice
        raise CoercionError(f"expected one of {list(choices)}, got {value!r}")
    if inspect.isclass(tp) and issubclass(tp, enum.Enum):
        if isinstance(value, tp):
            return value
        for member in tp:
            if member.value == value:
                return member
            if isinstance(value, str) and isinstance(member.value, str):
                if member.value.lower() == value.strip().lower():
                    return member
            if isinstance(value, str) and member.name.lower() == value.strip().lower():
                return member
        raise CoercionError(f"expected one of {[m.value for m in tp]}, got {value!r}")
    if tp is list or origin is list or origin is tuple:
        args = typing.get_args(tp)
        item_tp = args[0] if args else Any
        # A lone scalar where a list is expected is almost always a one-item list.
        items = value if isinstance(value, list | tuple) else [value]
        out = []
        for i, item in enumerate(items):
            try:
                out.append(coerce(item_tp, item))
            except CoercionError as exc:
                raise CoercionError(f"item {i}: {exc}") from None
        return tuple(out) if origin is tuple else out
    if tp is dict or origin is dict:
        if not isinstance(value, dict):
            raise CoercionError(f"expected an object, got {type(value).__name__}")
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is not Any:
            return {k: coerce(args[1], v) for k, v in value.items()}
        return dict(value)
    raise CoercionError(f"unsupported type {tp!r}")


_SECTION = re.compile(
    r"^(Args|Arguments|Parameters|Params|Returns|Return|Yields|Raises|Examples?|Notes?|"
    r"See Also|Attributes|Todo)\s*:\s*$"
)
_ARG_LINE = re.compile(r"^(\*{0,2}\w+)\s*(\([^)]*\))?\s*:\s*(.*)$")


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """Google-style docstring -> (description, {param: description})."""
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    description: list[str] = []
    params: dict[str, str] = {}
    section: str | None = None
    base_indent: int | None = None
    current: str | None = None
    for line in lines:
        stripped = line.strip()
        header = _SECTION.match(stripped) if not line.startswith((" ", "\t")) else None
        if header:
            section, base_indent, current = header.group(1), None, None
            continue
        if section is None:
            description.append(line)
            continue
        if section not in ("Args", "Arguments", "Parameters", "Params") or not stripped:
            continue
        indent = len(line) - len(line.lstrip())
        if base_indent is None:
            base_indent = indent
        match = _ARG_LINE.match(stripped) if indent <= base_indent else None
        if match:
            current = match.group(1).lstrip("*")
            params[current] = match.group(3).strip()
        elif current is not None:  # continuation line of the previous parameter
            params[current] = f"{params[current]} {stripped}".strip()
    text = "\n".join(description).strip()
    # Collapse hard-wrapped paragraphs: the model does not need our line breaks.
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]
    return "\n\n".join(paragraphs), params
