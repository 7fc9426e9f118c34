"""User-style tool module, resolved by `module:function` path in the registry tests."""

from __future__ import annotations

from tools.registry import ToolContext, tool


def greet(name: str, shout: bool = False) -> str:
    """Greet someone by name.

    Args:
        name: Who to greet.
        shout: Whether to shout.
    """
    text = f"Hello, {name}"
    return text.upper() if shout else text


@tool(name="weather_report", timeout_s=3.0, filler=False)
async def weather(city: str, ctx: ToolContext) -> dict:
    """Tell the weather in a city."""
    return {"city": city, "call": ctx.call_sid}


class Helpers:
    @staticmethod
    def echo(text: str) -> str:
        """Echo the text back."""
        return text


NOT_CALLABLE = 42


def undocumented(x: int) -> int:
    return x
