"""What a recorded call must achieve, and the check of a run against it.

`expect:` in a call script names tool calls (with arguments), words the bot says, the
booking left in the store, barge-ins and the outcome. `check_expectations` is a pure
function over what a run recorded, so the call runner, the load tester, the evaluation
and unit tests share one definition.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
)

# What agent/call.py can end a call with; a typo in `expect.outcome` would never match.
OUTCOMES = frozenset(
    {"completed", "caller_hung_up", "bot_ended", "transferred", "max_duration",
     "provider_failed", "error", "service_unavailable", "caller_silent"}
)  # fmt: skip
_TIME_RE = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


class StrictModel(BaseModel):
    """Script models: frozen, no unknown keys (a typo is an error, not ignored)."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


# Relative days, resolved against the run's `today` when checking: the runner moves
# `today` forward once a fixture's pinned date has passed, so expectations must move too.
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_TOKEN_RE = re.compile(rf"^@(today|tomorrow|today\+(\d{{1,3}})|{'|'.join(_WEEKDAYS)})$")
DAY_TOKENS_HELP = "@today, @tomorrow, @today+N or a weekday like @friday"


def resolve_day(token: str, today: dt.date) -> dt.date:
    """ "@tomorrow" -> today + 1; "@friday" -> the next Friday after today (never today,
    as the offline engine reads "Friday" said on a Friday); "@today+3" -> today + 3."""
    m = _DAY_TOKEN_RE.match(token.strip().lower())
    if m is None:
        raise ValueError(f"unknown day token {token!r}; use {DAY_TOKENS_HELP}")
    word = m[1]
    if word == "today":
        return today
    if word == "tomorrow":
        return today + dt.timedelta(days=1)
    if m[2]:
        return today + dt.timedelta(days=int(m[2]))
    ahead = (_WEEKDAYS.index(word) - today.weekday()) % 7 or 7
    return today + dt.timedelta(days=ahead)


def _check_day_tokens(value: Any) -> Any:
    """Reject a mistyped "@tomorow" at load time, wherever it sits in tool args."""
    if isinstance(value, str) and value.startswith("@"):
        resolve_day(value, dt.date(2000, 1, 3))
    elif isinstance(value, Mapping):
        for v in value.values():
            _check_day_tokens(v)
    elif isinstance(value, list):
        for v in value:
            _check_day_tokens(v)
    return value


class ToolExpect(StrictModel):
    name: str = Field(min_length=1)
    args: Annotated[dict[str, Any], AfterValidator(_check_day_tokens)] = Field(
        default_factory=dict
    )  # subset match; "@tomorrow"-style values are days


class BookingExpect(StrictModel):
    day: str | None = None  # "2026-12-01" or a day token ("@tomorrow")
    time: Annotated[str, Field(pattern=_TIME_RE.pattern)] | None = None
    name_contains: str | None = None
    status: Literal["active", "cancelled"] = "active"  # needs bookings with their status

    @field_validator("day", mode="before")
    @classmethod
    def _day(cls, value: Any) -> Any:
        if isinstance(value, dt.date):  # unquoted YAML date
            return value.isoformat()
        if isinstance(value, str) and not value.startswith("@"):
            try:
                return dt.date.fromisoformat(value).isoformat()
            except ValueError:
                raise ValueError(
                    f"{value!r} is not a date (YYYY-MM-DD) or a day token ({DAY_TOKENS_HELP})"
                ) from None
        return _check_day_tokens(value)


class Expectations(StrictModel):
    tools: list[ToolExpect] = Field(default_factory=list)
    no_tools: list[str] = Field(default_factory=list)  # fnmatch patterns
    bot_says: list[str] = Field(default_factory=list)
    booking: BookingExpect | None = None
    no_booking: bool | None = None  # True: the caller has no active booking at the end
    active_bookings: int | None = Field(default=None, ge=0)  # how many the caller has at the end
    barge_in: bool | None = None
    outcome: list[str] | None = None
    _today: dt.date | None = PrivateAttr(None)  # the script's `today`, for day tokens

    @field_validator("tools", mode="before")
    @classmethod
    def _tool_shorthand(cls, value: Any) -> Any:
        # `tools: [lookup_order]` means "called, with any arguments".
        if isinstance(value, list):
            return [{"name": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("no_tools", "bot_says", "outcome", mode="before")
    @classmethod
    def _one_is_a_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("outcome")
    @classmethod
    def _known_outcomes(cls, value: list[str] | None) -> list[str] | None:
        for outcome in value or []:
            if outcome not in OUTCOMES:
                raise ValueError(
                    f"unknown outcome {outcome!r}; one of {', '.join(sorted(OUTCOMES))}"
                )
        return value


def _norm(text: str) -> str:
    text = text.casefold().replace("\u2019", "'")
    return " ".join(re.sub(r"[^\w\s:']", " ", text).split())


def _resolve(value: Any, today: dt.date) -> Any:
    """Day tokens in expected values -> ISO dates."""
    if isinstance(value, str) and value.startswith("@"):
        return resolve_day(value, today).isoformat()
    if isinstance(value, Mapping):
        return {k: _resolve(v, today) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, today) for v in value]
    return value


def _matches(expected: Any, actual: Any) -> bool:
    """Subset match: dicts by their expected keys, strings case-insensitively."""
    if isinstance(expected, Mapping):
        return isinstance(actual, Mapping) and all(
            k in actual and _matches(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(_matches(e, a) for e, a in zip(expected, actual, strict=True))
        )
    if isinstance(expected, bool) or expected is None:
        return actual == expected
    if isinstance(expected, int | float):
        try:
            return float(actual) == float(expected)
        except (TypeError, ValueError):
            return False
    if isinstance(expected, dt.date):
        expected = expected.isoformat()
    return " ".join(str(expected).casefold().split()) == " ".join(str(actual).casefold().split())


def _tool_call(raw: Any) -> tuple[str, dict[str, Any]]:
    """(name, arguments) of a recorded call: a dict or an object, arguments maybe JSON."""
    get = raw.get if isinstance(raw, Mapping) else (lambda k, d=None: getattr(raw, k, d))
    args = get("arguments", None)
    if args is None:
        args = get("args", None)
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except ValueError:
            args = {"_raw": args}
    return str(get("name", "")), dict(args) if isinstance(args, Mapping) else {}


def _show_call(name: str, args: Mapping[str, Any]) -> str:
    return f"{name}({', '.join(f'{k}={v!r}' for k, v in args.items())})"


def check_expectations(
    expect: Expectations,
    tool_calls: Sequence[Mapping[str, Any] | Any],
    bot_text: str,
    outcome: str,
    bookings: Sequence[Mapping[str, Any]],
    barge_ins: int,
    *,
    today: dt.date | None = None,
) -> list[str]:
    """What a run got wrong, one readable line per failure ([] = passed).

    `tool_calls`: dicts (or objects) with `name` and `arguments` (a dict or JSON text).
    `bookings`: the caller's bookings as dicts (day, time, name, status; no status =
    active). `today`: what day tokens ("@tomorrow") count from; default the script's
    `today`, else the real date. A runner that moves `today` must pass the one it used.
    """
    today = today or expect._today or dt.date.today()
    failures: list[str] = []
    calls = [_tool_call(c) for c in tool_calls]
    shown = ", ".join(_show_call(n, a) for n, a in calls) or "none"
    for want in expect.tools:
        args = _resolve(want.args, today)
        if not any(n == want.name and _matches(args, a) for n, a in calls):
            failures.append(f"expected tool call {_show_call(want.name, args)}; calls: {shown}")
    for pattern in expect.no_tools:
        hits = [_show_call(n, a) for n, a in calls if fnmatch.fnmatchcase(n, pattern)]
        if hits:
            failures.append(f"unexpected tool call ({pattern}): {', '.join(hits)}")
    said = f" {_norm(bot_text)} "
    for phrase in expect.bot_says:
        if f" {_norm(phrase)} " not in said:
            failures.append(f"bot never said {phrase!r}; bot said: {bot_text.strip()[:300]!r}")
    if expect.booking is not None:
        failures += _check_booking(expect.booking, bookings, today)
    active = [b for b in bookings if str(b.get("status", "active")) == "active"]
    if expect.no_booking and active:
        failures.append(f"expected no active booking; store has: {_show_bookings(active)}")
    if expect.active_bookings is not None and len(active) != expect.active_bookings:
        failures.append(
            f"expected {expect.active_bookings} active booking(s); store has: {_show_bookings(active)}"
        )
    if expect.barge_in is True and barge_ins < 1:
        failures.append("expected a barge-in (a clear of the bot's audio), got none")
    if expect.barge_in is False and barge_ins > 0:
        failures.append(f"expected no barge-in, got {barge_ins}")
    if expect.outcome is not None and outcome not in expect.outcome:
        failures.append(f"outcome {outcome!r}, expected one of {', '.join(expect.outcome)}")
    return failures


def _show_bookings(bookings: Sequence[Mapping[str, Any]]) -> Any:
    return [{k: b.get(k) for k in ("day", "time", "name", "status")} for b in bookings] or "none"


def _check_booking(
    want: BookingExpect, bookings: Sequence[Mapping[str, Any]], today: dt.date
) -> list[str]:
    day = _resolve(want.day, today)

    def ok(b: Mapping[str, Any]) -> bool:
        if str(b.get("status", "active")) != want.status:
            return False
        if day is not None and str(b.get("day", ""))[:10] != day:
            return False
        if want.time is not None and str(b.get("time", ""))[:5] != want.time:
            return False
        name = str(b.get("name", "")).casefold()
        return want.name_contains is None or want.name_contains.casefold() in name

    if any(ok(b) for b in bookings):
        return []
    wanted = {**want.model_dump(exclude_none=True, mode="json"), **({"day": day} if day else {})}
    return [f"expected a booking {wanted}; store has: {_show_bookings(bookings)}"]
