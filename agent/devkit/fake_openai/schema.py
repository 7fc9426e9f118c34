"""The real server's strictness, from the `openai` SDK's own event types.

Client events are validated against `RealtimeClientEvent` plus the server's refusal of
unknown fields (the SDK models accept extras; the real server answers
`unknown_parameter`); server events the fake sends against `RealtimeServerEvent`,
strictly. The SDK is a dev dependency: where it is not installed (a load run from the
installed package) `SDK_CHECKS` is False and nothing is validated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, get_args

import pydantic

try:
    from openai.types.realtime import RealtimeClientEvent, RealtimeServerEvent
except ImportError:  # pragma: no cover - the dev extra is missing
    SDK_CHECKS = False
else:
    SDK_CHECKS = True
    CLIENT_EVENTS: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(RealtimeClientEvent)
    SERVER_EVENTS: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(RealtimeServerEvent)
    _CLIENT_MODELS = {
        get_args(m.model_fields["type"].annotation)[0]: m
        for m in get_args(get_args(RealtimeClientEvent)[0])
    }
# The real session object carries these beyond the SDK's request model.
_SERVER_EXTRA_OK = {"session.id", "session.object", "session.expires_at"}

def unknown_fields(value: Any, path: str = "") -> list[str]:
    """Dotted paths of fields the SDK model did not declare (it stores them as extras)."""
    found: list[str] = []
    if isinstance(value, pydantic.BaseModel):
        for key in value.model_extra or {}:
            found.append(f"{path}{key}")
        for name in type(value).model_fields:
            found += unknown_fields(getattr(value, name), f"{path}{name}.")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += unknown_fields(v, f"{path[:-1]}[{i}].")
    return found


@dataclass(frozen=True)
class EventViolation:
    code: str
    message: str
    param: str | None = None


def check_client_event(msg: Any) -> EventViolation | None:
    """Validate one client event like the real server: SDK schema + no unknown fields."""
    if not isinstance(msg, dict):
        return EventViolation("invalid_json", "Client event must be a JSON object.")
    if not SDK_CHECKS:
        return None
    try:
        model = CLIENT_EVENTS.validate_python(msg)
    except pydantic.ValidationError:
        model_cls = _CLIENT_MODELS.get(msg.get("type"))
        if model_cls is None:
            return EventViolation(
                "invalid_value", f"Invalid value: '{msg.get('type')}'. Unknown event type.", "type"
            )
        try:
            model_cls.model_validate(msg)
        except pydantic.ValidationError as exc:
            err = exc.errors()[0]
            # Drop union variant names (class names) from the location.
            loc = ".".join(str(p) for p in err["loc"] if not str(p)[:1].isupper())
            if err["type"] == "missing":
                return EventViolation(
                    "missing_required_parameter", f"Missing required parameter: '{loc}'.", loc
                )
            return EventViolation("invalid_value", f"Invalid value for '{loc}': {err['msg']}.", loc)
        return EventViolation("invalid_value", "Invalid client event.")  # pragma: no cover
    extras = unknown_fields(model)
    if extras:
        return EventViolation("unknown_parameter", f"Unknown parameter: '{extras[0]}'.", extras[0])
    return None


def check_server_event(ev: dict[str, Any]) -> str | None:
    """Why `ev` is not a valid GA server event, or None."""
    if not SDK_CHECKS:
        return None
    try:
        model = SERVER_EVENTS.validate_python(ev)
    except pydantic.ValidationError as exc:
        return f"{ev.get('type')}: {exc}"
    if getattr(model, "type", None) != ev.get("type"):
        return f"{ev.get('type')} validated as {getattr(model, 'type', '?')}"
    extras = [p for p in unknown_fields(model) if p not in _SERVER_EXTRA_OK]
    return f"{ev.get('type')}: unknown fields {extras}" if extras else None
