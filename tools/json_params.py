"""Tool parameters written as JSON Schema by hand (HTTP tools in a flows file).

`check_schema` accepts the part of JSON Schema that OpenAI's and Gemini's function
declarations both take (types, properties, required, items, enum, anyOf, bounds, ...)
and names anything else: a misspelt keyword (`requried`) is ignored by JSON Schema
itself and by the providers, so the model would silently be told less than was meant.
`check_value` validates the model's arguments against such a schema, so a tool gets
what it declared and the model hears what it got wrong.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["check_schema", "check_value"]

_TYPES = {"string", "number", "integer", "boolean", "array", "object", "null"}
_ANNOTATIONS = {"description", "title", "default", "examples", "format", "nullable"}
_KEYWORDS = {
    "any": _ANNOTATIONS | {"type", "enum", "anyOf", "const"},
    "string": {"minLength", "maxLength", "pattern"},
    "number": {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"},
    "integer": {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"},
    "array": {"items", "minItems", "maxItems"},
    "object": {"properties", "required", "additionalProperties"},
}
MAX_DEPTH = 8


def _types_of(schema: dict[str, Any]) -> list[str]:
    declared = schema.get("type")
    if isinstance(declared, str):
        return [declared]
    if isinstance(declared, list):
        return [t for t in declared if isinstance(t, str)]
    return []


def check_schema(schema: Any, *, top: bool = True) -> list[str]:
    """Problems with `schema` as a tool's parameters ("" path = the top), empty if none."""
    problems: list[str] = []
    if top and (not isinstance(schema, dict) or schema.get("type") != "object"):
        return ['must be a JSON Schema object with "type": "object"']
    _check(schema, "", problems, 0)
    return problems


def _check(schema: Any, path: str, problems: list[str], depth: int) -> None:
    where = path or "(top)"
    if depth > MAX_DEPTH:
        problems.append(f"{where}: nested deeper than {MAX_DEPTH} levels")
        return
    if not isinstance(schema, dict):
        problems.append(f"{where}: a schema must be a mapping, got {type(schema).__name__}")
        return
    types = _types_of(schema)
    declared = schema.get("type")
    if declared is not None:
        listed = declared if isinstance(declared, list) else [declared]
        bad = [t for t in listed if t not in _TYPES]
        if bad or not listed:
            problems.append(f"{where}: type must be one of {sorted(_TYPES)}, got {declared!r}")
    elif "anyOf" not in schema and "enum" not in schema and "const" not in schema:
        problems.append(f"{where}: needs a type (or enum / anyOf)")
    allowed = set(_KEYWORDS["any"]).union(*(_KEYWORDS.get(t, set()) for t in types))
    for key in schema:
        if key not in allowed:
            hint = " for this type" if any(key in kw for kw in _KEYWORDS.values()) else ""
            problems.append(f"{where}: unknown keyword {key!r}{hint}")
    if "enum" in schema and not (isinstance(schema["enum"], list) and schema["enum"]):
        problems.append(f"{where}: enum must be a non-empty list")
    if "anyOf" in schema:
        options = schema["anyOf"]
        if not (isinstance(options, list) and options):
            problems.append(f"{where}: anyOf must be a non-empty list")
        else:
            for i, option in enumerate(options):
                _check(option, f"{path}.anyOf[{i}]" if path else f"anyOf[{i}]", problems, depth + 1)
    if "pattern" in schema:
        try:
            re.compile(schema["pattern"])
        except (re.error, TypeError) as exc:
            problems.append(f"{where}: pattern is not a regular expression ({exc})")
    if "object" in types:
        props = schema.get("properties", {})
        if not isinstance(props, dict):
            problems.append(f"{where}: properties must be a mapping of name -> schema")
            props = {}
        for name, sub in props.items():
            _check(sub, f"{path}.{name}" if path else name, problems, depth + 1)
        required = schema.get("required", [])
        if not (isinstance(required, list) and all(isinstance(r, str) for r in required)):
            problems.append(f"{where}: required must be a list of property names")
        else:
            for name in required:
                if name not in props:
                    problems.append(f"{where}: required names {name!r}, which is not a property")
        extra = schema.get("additionalProperties", True)
        if not isinstance(extra, bool):
            problems.append(f"{where}: additionalProperties must be true or false")
    if "array" in types:
        if "items" not in schema:
            problems.append(f"{where}: an array needs items (Gemini refuses one without)")
        else:
            _check(schema["items"], f"{path}[]" if path else "[]", problems, depth + 1)


def _is_type(value: Any, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool) or (
            isinstance(value, float) and value.is_integer()
        )
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "array":
        return isinstance(value, list)
    if kind == "object":
        return isinstance(value, dict)
    return value is None  # "null"


def check_value(schema: dict[str, Any], value: Any, path: str = "") -> list[str]:
    """Why `value` does not fit `schema` (a schema `check_schema` accepted); empty if it does."""
    where = path or "arguments"
    if "anyOf" in schema:
        if not any(not check_value(option, value, path) for option in schema["anyOf"]):
            return [f"{where}: matches none of the allowed forms"]
    types = _types_of(schema)
    if schema.get("nullable") and value is None:
        return []
    if types and not any(_is_type(value, t) for t in types):
        return [f"{where}: must be {' or '.join(types)}, got {type(value).__name__}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where}: must be one of {schema['enum']!r}, got {value!r}"]
    if "const" in schema and value != schema["const"]:
        return [f"{where}: must be {schema['const']!r}"]
    problems: list[str] = []
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            problems.append(f"{where}: shorter than {schema['minLength']} characters")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            problems.append(f"{where}: longer than {schema['maxLength']} characters")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            problems.append(f"{where}: does not match {schema['pattern']!r}")
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            problems.append(f"{where}: below the minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            problems.append(f"{where}: above the maximum {schema['maximum']}")
    elif isinstance(value, list) and "items" in schema:
        if len(value) < schema.get("minItems", 0):
            problems.append(f"{where}: fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            problems.append(f"{where}: more than {schema['maxItems']} items")
        for i, item in enumerate(value):
            problems += check_value(schema["items"], item, f"{path}[{i}]")
    elif isinstance(value, dict):
        props: dict[str, Any] = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                hint = props.get(name, {}).get("description", "")
                problems.append(f"missing required argument {name!r}" + (f" ({hint})" if hint else ""))
        for name, item in value.items():
            sub = f"{path}.{name}" if path else name
            if name in props:
                problems += check_value(props[name], item, sub)
            elif schema.get("additionalProperties", True) is False:
                accepted = ", ".join(sorted(props)) or "none"
                problems.append(f"unexpected argument {name!r}; accepted: {accepted}")
    return problems
