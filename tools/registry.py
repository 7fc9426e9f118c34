"""The `@tool` decorator, the `Tool` it produces, and the `Registry` flows resolve names in.

A tool is a plain typed, documented function. Its JSON schema comes from the signature
and the Google-style docstring; its policy (timeout, filler, background, retries) rides
along as data for the agent's ToolRunner, which enforces it. This module only describes
and invokes: it never imports anything from `agent` or `telephony`.

(A little over 400 lines: the decorator, the `Tool` it makes and the registry that
resolves names are one idea; schemas live in `tools.schema`.)
"""

from __future__ import annotations

import asyncio
import copy
import functools
import importlib
import inspect
import re
import typing
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, overload

from tools.schema import CoercionError, Param, coerce, parse_docstring, strip_optional, type_schema

if TYPE_CHECKING:
    import datetime as dt

    from tools.schedule import AppointmentConfig
    from tools.store.base import Store

__all__ = [
    "REGISTRY",
    "Registry",
    "Scheduling",
    "Tool",
    "ToolArgumentError",
    "ToolContext",
    "ToolFailure",
    "UnknownToolError",
    "tool",
]

Scheduling = Literal["INTERRUPT", "WHEN_IDLE", "SILENT"]
_SCHEDULING = typing.get_args(Scheduling)
# OpenAI and Gemini both limit function names to this alphabet and length.
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class ToolContext:
    """Per-call facts injected into a tool; never part of the model-visible schema.

    The agent wires in the shared `store`, the call's `flow` name and, where a demo or
    test pins the date, a `clock` returning an aware datetime; `appointments` overrides
    the booking rules (default: APPT_* environment variables).
    """

    call_sid: str
    caller: str | None
    tool_call_id: str
    store: Store | None = None
    flow: str = ""
    clock: Callable[[], dt.datetime] | None = None
    appointments: AppointmentConfig | None = None

    def __post_init__(self) -> None:
        # An empty part would make unrelated tool calls share an idempotency key.
        if not self.call_sid:
            raise ValueError("ToolContext.call_sid must be a non-empty string")
        if not self.tool_call_id:
            raise ValueError("ToolContext.tool_call_id must be a non-empty string")

    @property
    def idempotency_key(self) -> str:
        """Stable across replays of the same tool call, unique across calls."""
        return f"{self.call_sid}:{self.tool_call_id}"


class ToolFailure(Exception):
    """A failure a caller can be told about: the message is a sentence for them ("our
    booking system is not answering right now"), `retryable` whether trying again later
    may help. The agent hands both to the model instead of an exception's own text."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class ToolArgumentError(ValueError):
    """The model's arguments do not fit the tool's signature.

    The message is written to be handed back to the model so it can correct itself.
    """

    def __init__(self, tool: str, message: str, param: str | None = None) -> None:
        super().__init__(f"{tool}: {message}")
        self.tool = tool
        self.param = param


class UnknownToolError(KeyError):
    """A flow named a tool that is neither registered nor importable."""

    def __str__(self) -> str:  # KeyError would repr() the message, quotes and all
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class Tool:
    """A callable the model can use: schema, policy, and the function itself."""

    name: str
    description: str
    parameters: dict[str, Any]
    fn: Callable[..., Any] = field(repr=False, compare=False)
    timeout_s: float = 10.0
    filler: bool = True
    filler_phrases: tuple[str, ...] = ()
    background: bool = False
    scheduling: Scheduling = "WHEN_IDLE"
    cancel_on_barge_in: bool = False
    idempotent: bool = False
    retries: int = 2
    params: tuple[Param, ...] = field(default=(), repr=False, compare=False)
    context_param: str | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(
                f"tool name {self.name!r} must match {_NAME.pattern} (letters, digits, _ or -)"
            )
        if not self.description:
            raise ValueError(f"tool {self.name!r} needs a docstring: the model reads it")
        if self.timeout_s <= 0:
            raise ValueError(f"tool {self.name!r}: timeout_s must be > 0, got {self.timeout_s}")
        if self.retries < 0:
            raise ValueError(f"tool {self.name!r}: retries must be >= 0, got {self.retries}")
        if self.scheduling not in _SCHEDULING:
            raise ValueError(
                f"tool {self.name!r}: scheduling must be one of {_SCHEDULING}, "
                f"got {self.scheduling!r}"
            )

    def spec(self) -> dict[str, Any]:
        """{"name", "description", "parameters"}: a fresh copy, safe to mutate."""
        return {
            "name": self.name,
            "description": self.description,
            "parameters": copy.deepcopy(self.parameters),
        }

    def arguments_object(self, args: object) -> dict[str, Any]:
        """The model's arguments as a JSON object (none given is an empty one)."""
        if args is None:
            return {}
        if not isinstance(args, dict):
            raise ToolArgumentError(
                self.name, f"arguments must be a JSON object, got {type(args).__name__}"
            )
        return args

    def bind(self, args: dict[str, Any] | None) -> dict[str, Any]:
        """Validate and coerce model arguments into keyword arguments (no context)."""
        args = self.arguments_object(args)
        known = {p.name for p in self.params}
        unknown = sorted(set(args) - known)
        if unknown:
            accepted = ", ".join(sorted(known)) or "none"
            raise ToolArgumentError(
                self.name,
                f"unexpected argument(s) {', '.join(map(repr, unknown))}; accepted: {accepted}",
                unknown[0],
            )
        kwargs: dict[str, Any] = {}
        for p in self.params:
            if p.name not in args:
                if p.required:
                    hint = f" ({p.description})" if p.description else ""
                    raise ToolArgumentError(
                        self.name, f"missing required argument {p.name!r}{hint}", p.name
                    )
                continue  # the function's own default applies
            try:
                kwargs[p.name] = coerce(p.annotation, args[p.name])
            except CoercionError as exc:
                raise ToolArgumentError(self.name, f"argument {p.name!r}: {exc}", p.name) from None
        return kwargs

    async def invoke(self, args: dict[str, Any] | None, ctx: ToolContext) -> Any:
        """Run the tool with model-supplied `args`; sync functions run in a worker thread."""
        kwargs = self.bind(args)
        if self.context_param is not None:
            kwargs[self.context_param] = ctx
        if inspect.iscoroutinefunction(self.fn):
            return await self.fn(**kwargs)
        # A sync tool doing I/O must never stall the call's audio loop.
        result = await asyncio.to_thread(self.fn, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the underlying function directly (tests, composition)."""
        return self.fn(*args, **kwargs)


def _is_context(tp: Any) -> bool:
    inner, _ = strip_optional(tp)
    return inner is ToolContext


def _build(
    fn: Callable[..., Any],
    *,
    name: str | None,
    timeout_s: float,
    filler: bool,
    filler_phrases: Iterable[str] | None,
    background: bool,
    scheduling: Scheduling,
    cancel_on_barge_in: bool,
    idempotent: bool,
    retries: int,
) -> Tool:
    tool_name: str = name or str(getattr(fn, "__name__", ""))
    where = f"tool {tool_name!r}"
    if not callable(fn):
        raise TypeError(f"{where}: expected a function, got {type(fn).__name__}")
    try:
        hints = typing.get_type_hints(fn)
    except NameError as exc:
        raise TypeError(f"{where}: cannot resolve a type hint: {exc}") from None
    description, arg_docs = parse_docstring(inspect.getdoc(fn))
    signature = inspect.signature(fn)
    params: list[Param] = []
    context_param: str | None = None
    for p in signature.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise TypeError(f"{where}: *args/**kwargs cannot be described to the model")
        if p.kind is p.POSITIONAL_ONLY:
            raise TypeError(f"{where}: parameter {p.name!r} is positional-only")
        if p.name not in hints:
            raise TypeError(f"{where}: parameter {p.name!r} needs a type hint")
        annotation = hints[p.name]
        if _is_context(annotation):
            context_param = p.name
            continue
        try:
            schema = type_schema(annotation)
        except TypeError as exc:
            raise TypeError(f"{where}: parameter {p.name!r}: {exc}") from None
        doc = arg_docs.get(p.name, "")
        if doc:
            schema["description"] = doc
        _, optional = strip_optional(annotation)
        has_default = p.default is not p.empty
        if has_default and isinstance(p.default, str | int | float | bool):
            schema["default"] = p.default
        params.append(
            Param(
                name=p.name,
                annotation=annotation,
                # A bare `X | None` with no default is still required: the model must say null.
                required=not has_default,
                default=p.default if has_default else None,
                description=doc,
                schema=schema,
            )
        )
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {p.name: p.schema for p in params},
        "required": [p.name for p in params if p.required],
    }
    return Tool(
        name=tool_name,
        description=description,
        parameters=parameters,
        fn=fn,
        timeout_s=float(timeout_s),
        filler=filler,
        filler_phrases=tuple(filler_phrases or ()),
        background=background,
        scheduling=scheduling,
        cancel_on_barge_in=cancel_on_barge_in,
        idempotent=idempotent,
        retries=retries,
        params=tuple(params),
        context_param=context_param,
    )


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...
@overload
def tool(
    *,
    name: str | None = ...,
    timeout_s: float = ...,
    filler: bool = ...,
    filler_phrases: Iterable[str] | None = ...,
    background: bool = ...,
    scheduling: Scheduling = ...,
    cancel_on_barge_in: bool = ...,
    idempotent: bool = ...,
    retries: int = ...,
) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    timeout_s: float = 10.0,
    filler: bool = True,
    filler_phrases: Iterable[str] | None = None,
    background: bool = False,
    scheduling: Scheduling = "WHEN_IDLE",
    cancel_on_barge_in: bool = False,
    idempotent: bool = False,
    retries: int = 2,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Turn a typed, documented function into a `Tool`. Usable as `@tool` or `@tool(...)`."""
    build = functools.partial(
        _build,
        name=name,
        timeout_s=timeout_s,
        filler=filler,
        filler_phrases=filler_phrases,
        background=background,
        scheduling=scheduling,
        cancel_on_barge_in=cancel_on_barge_in,
        idempotent=idempotent,
        retries=retries,
    )
    if fn is not None:
        return build(fn)
    return build


class Registry:
    """Tools by name, plus `module:function` references resolved on demand."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        self._imported: dict[str, Tool] = {}
        for t in tools:
            self.register(t)

    def register(self, item: Tool | Callable[..., Any]) -> Tool:
        """Add a Tool (or wrap a plain function with default policy). Returns the Tool."""
        t = item if isinstance(item, Tool) else tool(item)
        existing = self._tools.get(t.name)
        if existing is not None and existing.fn is not t.fn:
            raise ValueError(f"a different tool named {t.name!r} is already registered")
        self._tools[t.name] = t
        return t

    def get(self, name: str) -> Tool:
        try:
            return self._tools[name]
        except KeyError:
            raise UnknownToolError(
                f"unknown tool {name!r}; known tools: {', '.join(self.names()) or 'none'}"
                " (or use a 'module:function' import path)"
            ) from None

    def resolve(self, ref: str) -> Tool:
        """A registry name, or `package.module:function` (a Tool or a plain function)."""
        if ":" not in ref:
            return self.get(ref)
        if ref in self._imported:
            return self._imported[ref]
        module_name, _, attr_path = ref.partition(":")
        if not module_name or not attr_path:
            raise UnknownToolError(f"bad tool reference {ref!r}; expected 'module:function'")
        try:
            target: Any = importlib.import_module(module_name)
        except ImportError as exc:
            raise UnknownToolError(f"tool {ref!r}: cannot import {module_name!r}: {exc}") from None
        for part in attr_path.split("."):
            try:
                target = getattr(target, part)
            except AttributeError:
                raise UnknownToolError(
                    f"tool {ref!r}: {module_name!r} has no attribute {attr_path!r}"
                ) from None
        if isinstance(target, Tool):
            resolved = target
        elif callable(target):
            resolved = tool(target)
        else:
            raise UnknownToolError(
                f"tool {ref!r} is a {type(target).__name__}, not a function or Tool"
            )
        self._imported[ref] = resolved
        return resolved

    def resolve_all(self, refs: Iterable[str]) -> list[Tool]:
        """Resolve a flow's tool list; two tools with one name would confuse the model."""
        refs = list(refs)
        tools = [self.resolve(r) for r in refs]
        seen: dict[str, str] = {}
        for ref, t in zip(refs, tools, strict=True):
            if t.name in seen and seen[t.name] != ref:
                raise ValueError(f"tools {seen[t.name]!r} and {ref!r} share the name {t.name!r}")
            seen[t.name] = ref
        return tools

    def names(self) -> list[str]:
        return sorted(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)


# The process-wide registry flows resolve names in: static configuration (which tools
# exist), never per-call state. `tools.builtin` adds the business tools to it, and the
# package's __init__ imports `tools.builtin`, so importing anything from `tools` fills it.
REGISTRY = Registry()
