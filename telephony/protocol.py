"""Sans-I/O Twilio Media Streams messages.

Text in, typed frozen events out; typed values in, text out. No sockets, no event loop:
everything here is unit-testable with plain strings. Every misuse raises `ProtocolError`
with a message that says exactly what was wrong, in the spirit of h11.

This is the server's side: it parses what Twilio sends (`parse_inbound`) and builds
what we send (`media_message`, `mark_message`, `clear_message`). The phone's side (what
Twilio sends, and reading what a server sends it) is `telephony.testing.messages`, built
on the same strict readers.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# A 20 ms frame is 160 bytes (~216 base64 chars); a whole message is well under 1 KiB.
# Anything near these caps is either a bug or an attack.
MAX_MESSAGE_CHARS = 64 * 1024
MAX_PAYLOAD_BYTES = 16 * 1024
MAX_MARK_NAME = 256
DTMF_DIGITS = frozenset("0123456789*#ABCD")
# Twilio SIDs are two letters + 32 hex; we accept any short token of safe characters,
# which also keeps a peer from breaking the JSON we build around its streamSid.
_SID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class ProtocolError(ValueError):
    """A Media Streams message that does not follow the protocol."""


@dataclass(frozen=True, slots=True)
class MediaFormat:
    encoding: str = "audio/x-mulaw"
    sample_rate: int = 8000
    channels: int = 1


@dataclass(frozen=True, slots=True)
class Connected:
    protocol: str
    version: str


@dataclass(frozen=True, slots=True)
class Start:
    stream_sid: str
    account_sid: str
    call_sid: str
    tracks: tuple[str, ...]
    custom_parameters: dict[str, str]
    media_format: MediaFormat
    sequence_number: int


@dataclass(frozen=True, slots=True)
class Media:
    stream_sid: str
    track: str
    chunk: int
    timestamp: int
    payload: bytes
    sequence_number: int
    # The payload as Twilio sent it (validated base64): a model that takes base64 μ-law
    # gets it as is, without a decode and a re-encode per frame.
    payload_b64: str = ""


@dataclass(frozen=True, slots=True)
class Mark:
    stream_sid: str
    name: str
    sequence_number: int


@dataclass(frozen=True, slots=True)
class Dtmf:
    stream_sid: str
    digit: str
    track: str
    sequence_number: int


@dataclass(frozen=True, slots=True)
class Stop:
    stream_sid: str
    account_sid: str
    call_sid: str
    sequence_number: int


InboundEvent = Connected | Start | Media | Mark | Dtmf | Stop


# ---------------------------------------------------------------- field helpers


def json_object(parent: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = parent.get(key)
    if not isinstance(value, dict):
        raise ProtocolError(f"{where}: field '{key}' must be an object, got {_kind(value)}")
    return value


def json_str(parent: dict[str, Any], key: str, where: str, *, max_len: int = 256) -> str:
    value = parent.get(key)
    if not isinstance(value, str):
        raise ProtocolError(f"{where}: field '{key}' must be a string, got {_kind(value)}")
    if len(value) > max_len:
        raise ProtocolError(f"{where}: field '{key}' is {len(value)} chars, limit {max_len}")
    return value


def _numeric_str(parent: dict[str, Any], key: str, where: str) -> int:
    # Twilio sends sequenceNumber/chunk/timestamp as decimal *strings*.
    value = parent.get(key)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ProtocolError(f"{where}: field '{key}' must be a decimal string, got {_kind(value)}")
    text = str(value)
    # isascii: str.isdigit() also accepts "²", which int() then refuses.
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise ProtocolError(f"{where}: field '{key}' must be a decimal string, got {text[:40]!r}")
    return int(text)


def _kind(value: object) -> str:
    if value is None:
        return "nothing"
    return type(value).__name__


_MAX_PAYLOAD_B64 = (MAX_PAYLOAD_BYTES * 4) // 3 + 4


def decode_payload(text: str, where: str) -> bytes:
    if len(text) > _MAX_PAYLOAD_B64:
        raise ProtocolError(f"{where}: payload is larger than {MAX_PAYLOAD_BYTES} bytes")
    try:
        # strict_mode: reject stray characters and bad padding instead of guessing.
        return binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise ProtocolError(f"{where}: payload is not valid base64 ({exc})") from None


def _no_constant(name: str) -> Any:
    raise ProtocolError(f"message is not valid JSON ({name} is not a JSON number)")


# One decoder, built once: json.loads with any keyword builds a new one per call (~1 µs).
_DECODER = json.JSONDecoder(parse_constant=_no_constant)


def load_message(text: str | bytes) -> dict[str, Any]:
    """One JSON object, or ProtocolError: whatever the peer sends, never another error.

    JSON's own limits become protocol errors too: nesting deeper than the parser's
    recursion limit (RecursionError), integers beyond Python's digit limit (ValueError),
    and NaN/Infinity, which are not JSON at all."""
    if len(text) > MAX_MESSAGE_CHARS:
        raise ProtocolError(f"message is {len(text)} bytes, limit {MAX_MESSAGE_CHARS}")
    try:
        data = _DECODER.decode(text if isinstance(text, str) else text.decode("utf-8"))
    except ProtocolError:
        raise
    except RecursionError:
        raise ProtocolError("message is not valid JSON (nested too deeply)") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, huge integers
        raise ProtocolError(f"message is not valid JSON ({exc.__class__.__name__}: {str(exc)[:200]})") from None
    if not isinstance(data, dict):
        raise ProtocolError(f"message must be a JSON object, got {_kind(data)}")
    return data


# ---------------------------------------------------------------- inbound (Twilio -> us)


def parse_inbound(text: str | bytes) -> InboundEvent:
    """Parse one text frame Twilio sent us. Raises ProtocolError on anything off-spec."""
    data = load_message(text)
    event = data.get("event")
    if event == "media":
        fast = _fast_media(data)
        if fast is not None:
            return fast
    if not isinstance(event, str):
        raise ProtocolError(f"message has no string 'event' field (got {_kind(event)})")
    if event == "connected":
        return Connected(
            protocol=json_str(data, "protocol", "connected"),
            version=json_str(data, "version", "connected"),
        )
    parser = _INBOUND.get(event)
    if parser is None:
        raise ProtocolError(f"unknown event {event[:40]!r}")
    seq = _numeric_str(data, "sequenceNumber", event)
    stream_sid = _sid(data, "streamSid", event)
    return parser(data, stream_sid, seq)


def _sid(parent: dict[str, Any], key: str, where: str) -> str:
    value = json_str(parent, key, where)
    if _SID.fullmatch(value) is None:
        raise ProtocolError(f"{where}: field '{key}' is not a SID (letters, digits, - or _; max 64)")
    return value


def _parse_start(data: dict[str, Any], stream_sid: str, seq: int) -> Start:
    body = json_object(data, "start", "start")
    tracks = body.get("tracks", ["inbound"])
    if not isinstance(tracks, list) or not all(isinstance(t, str) for t in tracks):
        raise ProtocolError("start: field 'tracks' must be a list of strings")
    params = body.get("customParameters", {})
    if not isinstance(params, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in params.items()
    ):
        raise ProtocolError("start: field 'customParameters' must map strings to strings")
    fmt = json_object(body, "mediaFormat", "start")
    encoding = json_str(fmt, "encoding", "start.mediaFormat")
    rate, channels = fmt.get("sampleRate"), fmt.get("channels")
    if encoding != "audio/x-mulaw" or rate != 8000 or channels != 1:
        raise ProtocolError(
            f"start: unsupported mediaFormat {encoding}/{rate}/{channels}; "
            "expected audio/x-mulaw/8000/1"
        )
    inner_sid = body.get("streamSid", stream_sid)
    if inner_sid != stream_sid:
        raise ProtocolError("start: start.streamSid does not match streamSid")
    return Start(
        stream_sid=stream_sid,
        account_sid=_sid(body, "accountSid", "start"),
        call_sid=_sid(body, "callSid", "start"),
        tracks=tuple(tracks),
        custom_parameters=dict(params),
        media_format=MediaFormat(encoding, rate, channels),
        sequence_number=seq,
    )


def _fast_media(data: dict[str, Any]) -> Media | None:
    """The 50-per-second path: a well-formed media message, checked inline.

    Returns None for anything unusual so the general parser produces the exact error.
    """
    body = data.get("media")
    if type(body) is not dict:
        return None
    seq, chunk, ts = data.get("sequenceNumber"), body.get("chunk"), body.get("timestamp")
    sid, payload, track = data.get("streamSid"), body.get("payload"), body.get("track", "inbound")
    if not (
        type(seq) is str and seq.isascii() and seq.isdigit() and len(seq) <= 18
        and type(chunk) is str and chunk.isascii() and chunk.isdigit() and len(chunk) <= 18
        and type(ts) is str and ts.isascii() and ts.isdigit() and len(ts) <= 18
        and type(sid) is str and _SID.fullmatch(sid) is not None
        and type(payload) is str and len(payload) <= _MAX_PAYLOAD_B64
        and type(track) is str
    ):
        return None
    try:
        audio = binascii.a2b_base64(payload, strict_mode=True)
    except (binascii.Error, ValueError):
        return None
    return Media(sid, track, int(chunk), int(ts), audio, int(seq), payload)


def _parse_media(data: dict[str, Any], stream_sid: str, seq: int) -> Media:
    body = json_object(data, "media", "media")
    return Media(
        stream_sid=stream_sid,
        track=body.get("track", "inbound") if isinstance(body.get("track"), str) else "inbound",
        chunk=_numeric_str(body, "chunk", "media"),
        timestamp=_numeric_str(body, "timestamp", "media"),
        payload=decode_payload(b64 := json_str(body, "payload", "media", max_len=MAX_MESSAGE_CHARS), "media"),
        payload_b64=b64,
        sequence_number=seq,
    )


def _parse_mark(data: dict[str, Any], stream_sid: str, seq: int) -> Mark:
    body = json_object(data, "mark", "mark")
    return Mark(stream_sid, json_str(body, "name", "mark", max_len=MAX_MARK_NAME), seq)


def _parse_dtmf(data: dict[str, Any], stream_sid: str, seq: int) -> Dtmf:
    body = json_object(data, "dtmf", "dtmf")
    digit = json_str(body, "digit", "dtmf")
    if digit not in DTMF_DIGITS:
        raise ProtocolError(f"dtmf: {digit[:10]!r} is not a DTMF digit")
    track = body.get("track", "inbound_track")
    return Dtmf(stream_sid, digit, track if isinstance(track, str) else "inbound_track", seq)


def _parse_stop(data: dict[str, Any], stream_sid: str, seq: int) -> Stop:
    body = json_object(data, "stop", "stop")
    return Stop(
        stream_sid=stream_sid,
        account_sid=json_str(body, "accountSid", "stop"),
        call_sid=json_str(body, "callSid", "stop"),
        sequence_number=seq,
    )


_INBOUND: dict[str, Callable[[dict[str, Any], str, int], InboundEvent]] = {
    "start": _parse_start,
    "media": _parse_media,
    "mark": _parse_mark,
    "dtmf": _parse_dtmf,
    "stop": _parse_stop,
}


# ---------------------------------------------------------------- outbound (us -> Twilio)


def _check_mark_name(name: str) -> None:
    if not isinstance(name, str) or not name or len(name) > MAX_MARK_NAME:
        raise ProtocolError(f"mark name must be 1..{MAX_MARK_NAME} chars")


def media_message(stream_sid: str, ulaw: bytes) -> str:
    """Queue raw μ-law 8 kHz audio (no WAV header) for playback."""
    if len(ulaw) > MAX_PAYLOAD_BYTES:
        raise ProtocolError(f"media payload is {len(ulaw)} bytes, limit {MAX_PAYLOAD_BYTES}")
    payload = base64.b64encode(ulaw).decode("ascii")
    # Hand-built: this runs 50 times a second per call and json.dumps is 3x slower here.
    return f'{{"event":"media","streamSid":"{stream_sid}","media":{{"payload":"{payload}"}}}}'


_COMPACT = (",", ":")


def mark_message(stream_sid: str, name: str) -> str:
    _check_mark_name(name)
    return json.dumps(
        {"event": "mark", "streamSid": stream_sid, "mark": {"name": name}}, separators=_COMPACT
    )


def clear_message(stream_sid: str) -> str:
    return json.dumps({"event": "clear", "streamSid": stream_sid}, separators=_COMPACT)
