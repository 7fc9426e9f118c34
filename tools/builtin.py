"""The built-in business tools, added to `tools.registry.REGISTRY` under their names.

Static configuration, done once at import: which functions exist. Nothing per call
lives here; per-call state travels in `ToolContext`.
"""

from __future__ import annotations

from tools.appointments import (
    book_appointment,
    cancel_appointment,
    check_availability,
    find_my_appointments,
    reschedule_appointment,
)
from tools.orders import lookup_order
from tools.registry import REGISTRY

__all__ = ["BUILTIN_TOOLS", "REGISTRY"]

BUILTIN_TOOLS = (
    check_availability,
    book_appointment,
    cancel_appointment,
    reschedule_appointment,
    find_my_appointments,
    lookup_order,
)

for _tool in BUILTIN_TOOLS:
    REGISTRY.register(_tool)
