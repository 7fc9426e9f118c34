"""@tool: schema from signature + docstring, argument coercion, invocation, Registry."""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import json
import threading
from typing import Literal, Optional

import pytest

from tools import REGISTRY
from tools.registry import (
    Registry,
    Tool,
    ToolArgumentError,
    ToolContext,
    UnknownToolError,
    tool,
)

CTX = ToolContext(call_sid="CA123", caller="+15550100", tool_call_id="call_1")


class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


@tool(timeout_s=4.0, filler_phrases=["Hold on."], idempotent=True, retries=3)
def everything(
    day: dt.date,
    count: int,
    ratio: float,
    urgent: bool,
    channel: Literal["sms", "email"],
    colour: Colour,
    tags: list[str],
    ctx: ToolContext,
    note: str | None = None,
    legacy: Optional[int] = None,  # noqa: UP045 - the typing spelling must work too
    size: int = 3,
) -> dict:
    """Do everything at once.

    A second paragraph that the model
    also reads.

    Args:
        day: The day, as an ISO date.
        count: How many. This description
            continues on the next line.
        ratio (float): A ratio.
        urgent: Whether it is urgent.
        channel: How to send it.
        colour: Which colour.
        tags: Free-form labels.
        note: Optional note.

    Returns:
        A dict with everything.
    """
    return {
        "day": day, "count": count, "ratio": ratio, "urgent": urgent, "channel": channel,
        "colour": colour, "tags": tags, "note": note, "legacy": legacy, "size": size,
        "ctx": ctx,
    }  # fmt: skip


def test_schema_from_signature_and_docstring() -> None:
    assert everything.name == "everything"
    assert everything.description == (
        "Do everything at once.\n\nA second paragraph that the model also reads."
    )
    props = everything.parameters["properties"]
    assert everything.parameters["type"] == "object"
    assert props["day"] == {
        "type": "string",
        "format": "date",
        "description": "The day, as an ISO date.",
    }
    assert props["count"] == {
        "type": "integer",
        "description": "How many. This description continues on the next line.",
    }
    assert props["ratio"] == {"type": "number", "description": "A ratio."}
    assert props["urgent"]["type"] == "boolean"
    assert props["channel"] == {
        "enum": ["sms", "email"],
        "type": "string",
        "description": "How to send it.",
    }
    assert props["colour"]["enum"] == ["red", "green"]
    assert props["tags"] == {
        "type": "array",
        "items": {"type": "string"},
        "description": "Free-form labels.",
    }
    assert props["note"] == {"type": "string", "description": "Optional note."}
    assert props["legacy"] == {"type": "integer"}
    assert props["size"] == {"type": "integer", "default": 3}
    assert "ctx" not in props  # injected, never shown to the model
    assert everything.parameters["required"] == [
        "day", "count", "ratio", "urgent", "channel", "colour", "tags",
    ]  # fmt: skip
    json.dumps(everything.spec())


def test_policy_fields() -> None:
    assert everything.timeout_s == 4.0
    assert everything.filler_phrases == ("Hold on.",)
    assert everything.idempotent and everything.retries == 3
    assert everything.filler and not everything.background
    assert everything.scheduling == "WHEN_IDLE" and not everything.cancel_on_barge_in


def test_spec_is_a_copy() -> None:
    spec = everything.spec()
    spec["parameters"]["properties"].clear()
    assert everything.parameters["properties"]


async def test_invoke_coerces_arguments_and_injects_context() -> None:
    out = await everything.invoke(
        {
            "day": "2026-11-27",
            "count": "4",
            "ratio": 2,
            "urgent": "yes",
            "channel": "Email",
            "colour": "GREEN",
            "tags": "vip",
            "legacy": None,
        },  # fmt: skip
        CTX,
    )
    assert out["day"] == dt.date(2026, 11, 27)
    assert out["count"] == 4 and out["ratio"] == 2.0 and out["urgent"] is True
    assert out["channel"] == "email" and out["colour"] is Colour.GREEN
    assert out["tags"] == ["vip"]  # a lone string where a list is expected
    assert out["note"] is None and out["legacy"] is None and out["size"] == 3
    assert out["ctx"] is CTX


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, "missing required argument 'day' (The day, as an ISO date.)"),
        ({"day": "27/11/2026"}, "argument 'day': expected an ISO date like 2026-11-27"),
        ({"day": "2026-11-27", "count": "four"}, "argument 'count': expected an integer"),
        ({"day": "2026-11-27", "count": True}, "argument 'count': expected an integer"),
        ({"day": "2026-11-27", "count": 1, "ratio": "x"}, "argument 'ratio': expected a number"),
        (
            {"day": "2026-11-27", "count": 1, "ratio": 1, "urgent": True, "channel": "fax"},
            "argument 'channel': expected one of ['sms', 'email']",
        ),
        ({"bogus": 1}, "unexpected argument(s) 'bogus'; accepted: channel, colour, count"),
        ({"ctx": "x"}, "unexpected argument(s) 'ctx'"),
    ],
)
async def test_bad_arguments_raise_a_clear_error(args: dict, message: str) -> None:
    with pytest.raises(ToolArgumentError) as info:
        await everything.invoke(args, CTX)
    assert info.value.tool == "everything"
    assert str(info.value).startswith("everything: ")
    assert message in str(info.value)


async def test_arguments_must_be_an_object() -> None:
    with pytest.raises(ToolArgumentError, match="must be a JSON object"):
        await everything.invoke(["2026-11-27"], CTX)  # type: ignore[arg-type]


async def test_sync_tools_run_off_the_event_loop() -> None:
    """The sync tool blocks until the loop sets an event: it would deadlock on the loop."""
    started = threading.Event()
    release = threading.Event()

    @tool
    def blocking(x: int) -> str:
        """Wait for the loop to release us."""
        started.set()
        assert release.wait(10), "the event loop was blocked"
        return threading.current_thread().name

    task = asyncio.create_task(blocking.invoke({"x": 1}, CTX))
    assert await asyncio.to_thread(started.wait, 10)
    release.set()  # runs on the loop while the tool is still inside its thread
    assert await task != threading.current_thread().name


async def test_async_tools_run_on_the_loop() -> None:
    @tool
    async def hello(name: str) -> str:
        """Say hello."""
        return f"hi {name}"

    assert await hello.invoke({"name": 7}, CTX) == "hi 7"  # numbers coerce to str
    assert await hello("x") == "hi x"  # the Tool is still callable directly


def test_bare_decorator_and_name_override() -> None:
    @tool
    def a(x: int) -> int:
        """A."""
        return x

    @tool(name="b-tool", background=True, scheduling="SILENT", cancel_on_barge_in=True)
    def b(x: int) -> int:
        """B."""
        return x

    assert isinstance(a, Tool) and a.name == "a" and a.timeout_s == 10.0 and a.retries == 2
    assert b.name == "b-tool" and b.background and b.scheduling == "SILENT"
    assert b.cancel_on_barge_in


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "has space"}, "must match"),
        ({"scheduling": "LATER"}, "scheduling must be one of"),
        ({"timeout_s": 0}, "timeout_s must be > 0"),
        ({"retries": -1}, "retries must be >= 0"),
    ],
)
def test_bad_policy_is_rejected(kwargs: dict, message: str) -> None:
    def f(x: int) -> int:
        """F."""
        return x

    with pytest.raises(ValueError, match=message):
        tool(**kwargs)(f)


def test_functions_that_cannot_be_described_are_rejected() -> None:
    def no_doc(x: int) -> int:
        return x

    def no_hint(x) -> int:  # type: ignore[no-untyped-def]
        """No hint."""
        return x

    def varargs(*xs: int) -> int:
        """Varargs."""
        return 0

    def weird(x: set[int]) -> int:
        """Sets are not JSON."""
        return 0

    with pytest.raises(ValueError, match="needs a docstring"):
        tool(no_doc)
    with pytest.raises(TypeError, match="parameter 'x' needs a type hint"):
        tool(no_hint)
    with pytest.raises(TypeError, match=r"\*args/\*\*kwargs"):
        tool(varargs)
    with pytest.raises(TypeError, match="parameter 'x': cannot describe type"):
        tool(weird)


def test_tool_context() -> None:
    assert CTX.idempotency_key == "CA123:call_1"
    assert CTX.store is None and CTX.clock is None
    with pytest.raises(ValueError, match="call_sid"):
        ToolContext(call_sid="", caller=None, tool_call_id="x")
    with pytest.raises(ValueError, match="tool_call_id"):
        ToolContext(call_sid="CA1", caller=None, tool_call_id="")


# -- Registry ----------------------------------------------------------------------------------
def test_default_registry_has_the_builtin_tools() -> None:
    import tools.registry

    assert tools.registry.REGISTRY is REGISTRY
    assert REGISTRY.names() == [
        "book_appointment",
        "cancel_appointment",
        "check_availability",
        "find_my_appointments",
        "lookup_order",
        "reschedule_appointment",
    ]
    for t in REGISTRY:
        json.dumps(t.spec())
        assert t.description and t.filler_phrases


def test_unknown_name_lists_known_tools() -> None:
    with pytest.raises(KeyError) as info:
        REGISTRY.get("book_flight")
    assert isinstance(info.value, UnknownToolError)
    message = str(info.value)
    assert "unknown tool 'book_flight'" in message and "lookup_order" in message
    assert not message.startswith('"')  # readable, not KeyError's repr


def test_register_and_get() -> None:
    reg = Registry()

    def ping(host: str) -> str:
        """Ping a host."""
        return host

    t = reg.register(ping)  # plain functions get the default policy
    assert reg.get("ping") is t and "ping" in reg and len(reg) == 1
    assert reg.register(t) is t  # re-registering the same tool is fine

    @tool(name="ping")
    def other(host: str) -> str:
        """Another ping."""
        return host

    with pytest.raises(ValueError, match="already registered"):
        reg.register(other)


async def test_resolve_by_import_path() -> None:
    reg = Registry()
    greet = reg.resolve("tests.tools.sample_tools:greet")
    assert greet.name == "greet" and greet.timeout_s == 10.0
    assert greet.parameters["required"] == ["name"]
    assert await greet.invoke({"name": "Ada", "shout": "true"}, CTX) == "HELLO, ADA"
    assert reg.resolve("tests.tools.sample_tools:greet") is greet  # cached

    weather = reg.resolve("tests.tools.sample_tools:weather")
    assert weather.name == "weather_report" and not weather.filler
    assert await weather.invoke({"city": "Oslo"}, CTX) == {"city": "Oslo", "call": "CA123"}

    echo = reg.resolve("tests.tools.sample_tools:Helpers.echo")
    assert await echo.invoke({"text": "hi"}, CTX) == "hi"


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("nope_not_a_module:fn", "cannot import 'nope_not_a_module'"),
        ("tests.tools.sample_tools:missing", "has no attribute 'missing'"),
        ("tests.tools.sample_tools:NOT_CALLABLE", "is a int, not a function or Tool"),
        ("tests.tools.sample_tools:", "expected 'module:function'"),
        ("unknown_name", "unknown tool 'unknown_name'"),
    ],
)
def test_resolve_errors_are_key_errors(ref: str, message: str) -> None:
    with pytest.raises(KeyError) as info:
        Registry().resolve(ref)
    assert message in str(info.value)


def test_resolve_reports_undocumented_functions() -> None:
    with pytest.raises(ValueError, match="needs a docstring"):
        Registry().resolve("tests.tools.sample_tools:undocumented")


def test_resolve_all_rejects_duplicate_names() -> None:
    reg = Registry(REGISTRY)
    tools = reg.resolve_all(["lookup_order", "tests.tools.sample_tools:greet"])
    assert [t.name for t in tools] == ["lookup_order", "greet"]

    @tool(name="greet")
    def fake_greet(name: str) -> str:
        """Not the same greet."""
        return name

    reg.register(fake_greet)
    with pytest.raises(ValueError, match="share the name 'greet'"):
        reg.resolve_all(["greet", "tests.tools.sample_tools:greet"])
