"""Tools the voice agent can call: the registry, the business tools, and storage.

This package imports nothing from `agent` or `telephony`; they import it.
"""

from tools.builtin import BUILTIN_TOOLS, REGISTRY
from tools.registry import (
    Registry,
    Tool,
    ToolArgumentError,
    ToolContext,
    UnknownToolError,
    tool,
)

__all__ = [
    "BUILTIN_TOOLS",
    "REGISTRY",
    "Registry",
    "Tool",
    "ToolArgumentError",
    "ToolContext",
    "UnknownToolError",
    "tool",
]
