"""The phone's side of Twilio Media Streams messages, for the emulated phone.

`InboundBuilder` writes what Twilio sends a server (with correct sequence numbers);
`parse_outbound` reads what a server sends Twilio, as strictly as Twilio would. The
server's side is `telephony.protocol`; both use its strict JSON readers.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from telephony.protocol import (
    MAX_MARK_NAME,
    MAX_MESSAGE_CHARS,
    ProtocolError,
    decode_payload,
    json_object,
    json_str,
    load_message,
)


@dataclass(frozen=True, slots=True)
class OutMedia:
    stream_sid: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class OutMark:
    stream_sid: str
    name: str


@dataclass(frozen=True, slots=True)
class OutClear:
    stream_sid: str


OutboundEvent = OutMedia | OutMark | OutClear


def parse_outbound(text: str | bytes) -> OutboundEvent:
    """Parse a message a server sent to Twilio, as strictly as Twilio would."""
    data = load_message(text)
    event = data.get("event")
    stream_sid = json_str(data, "streamSid", str(event))
    if event == "media":
        body = json_object(data, "media", "media")
        payload = decode_payload(json_str(body, "payload", "media", max_len=MAX_MESSAGE_CHARS), "media")
        return OutMedia(stream_sid, payload)
    if event == "mark":
        name = json_str(json_object(data, "mark", "mark"), "name", "mark", max_len=MAX_MARK_NAME)
        return OutMark(stream_sid, name)
    if event == "clear":
        return OutClear(stream_sid)
    raise ProtocolError(f"unknown outbound event {str(event)[:40]!r}")


@dataclass(slots=True)
class InboundBuilder:
    """Builds Twilio's side of a stream with correct sequence numbers (for the emulator)."""

    stream_sid: str
    call_sid: str
    account_sid: str
    _seq: int = 0
    _chunk: int = 0
    _extra: dict[str, Any] = field(default_factory=dict)

    def _next(self) -> str:
        self._seq += 1
        return str(self._seq)

    def connected(self) -> str:
        return json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})

    def start(self, custom_parameters: dict[str, str]) -> str:
        return json.dumps({
            "event": "start",
            "sequenceNumber": self._next(),
            "streamSid": self.stream_sid,
            "start": {
                "streamSid": self.stream_sid,
                "accountSid": self.account_sid,
                "callSid": self.call_sid,
                "tracks": ["inbound"],
                "customParameters": custom_parameters,
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
        })

    def media(self, ulaw: bytes, timestamp_ms: int) -> str:
        self._chunk += 1
        payload = base64.b64encode(ulaw).decode("ascii")
        return (
            f'{{"event":"media","sequenceNumber":"{self._next()}","streamSid":"{self.stream_sid}",'
            f'"media":{{"track":"inbound","chunk":"{self._chunk}","timestamp":"{timestamp_ms}",'
            f'"payload":"{payload}"}}}}'
        )

    def mark(self, name: str) -> str:
        return json.dumps({
            "event": "mark",
            "sequenceNumber": self._next(),
            "streamSid": self.stream_sid,
            "mark": {"name": name},
        })

    def dtmf(self, digit: str) -> str:
        return json.dumps({
            "event": "dtmf",
            "sequenceNumber": self._next(),
            "streamSid": self.stream_sid,
            "dtmf": {"track": "inbound_track", "digit": digit},
        })

    def stop(self) -> str:
        return json.dumps({
            "event": "stop",
            "sequenceNumber": self._next(),
            "streamSid": self.stream_sid,
            "stop": {"accountSid": self.account_sid, "callSid": self.call_sid},
        })
