"""Sans-I/O Twilio Media Streams parsing and building: round trips and garbage."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telephony.protocol import (
    MAX_MESSAGE_CHARS,
    Connected,
    Dtmf,
    Mark,
    Media,
    ProtocolError,
    Start,
    Stop,
    clear_message,
    mark_message,
    media_message,
    parse_inbound,
)
from telephony.testing.messages import (
    InboundBuilder,
    OutClear,
    OutMark,
    OutMedia,
    parse_outbound,
)

DOC_START = {
    "event": "start",
    "sequenceNumber": "1",
    "streamSid": "MZ18ad3ab5a668481ce02b83e7395059f0",
    "start": {
        "streamSid": "MZ18ad3ab5a668481ce02b83e7395059f0",
        "accountSid": "AC123",
        "callSid": "CA123",
        "tracks": ["inbound"],
        "customParameters": {"flow": "desk", "token": "t"},
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
    },
}


def test_documented_messages_parse() -> None:
    assert parse_inbound('{"event":"connected","protocol":"Call","version":"1.0.0"}') == Connected(
        "Call", "1.0.0"
    )
    start = parse_inbound(json.dumps(DOC_START))
    assert isinstance(start, Start)
    assert start.call_sid == "CA123"
    assert start.custom_parameters == {"flow": "desk", "token": "t"}
    media = parse_inbound(
        '{"event":"media","sequenceNumber":"3","streamSid":"MZ1",'
        '"media":{"track":"inbound","chunk":"2","timestamp":"20","payload":"//7+"}}'
    )
    assert media == Media("MZ1", "inbound", 2, 20, b"\xff\xfe\xfe", 3, "//7+")  # the base64 kept as sent
    assert parse_inbound(
        '{"event":"dtmf","sequenceNumber":"7","streamSid":"MZ1",'
        '"dtmf":{"track":"inbound_track","digit":"1"}}'
    ) == Dtmf("MZ1", "1", "inbound_track", 7)
    assert parse_inbound(
        '{"event":"mark","sequenceNumber":"9","streamSid":"MZ1","mark":{"name":"resp_42:3"}}'
    ) == Mark("MZ1", "resp_42:3", 9)
    assert parse_inbound(
        '{"event":"stop","sequenceNumber":"120","streamSid":"MZ1",'
        '"stop":{"accountSid":"AC1","callSid":"CA1"}}'
    ) == Stop("MZ1", "AC1", "CA1", 120)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("not json", "not valid JSON"),
        ("[1,2]", "JSON object"),
        ('{"event":5}', "'event'"),
        ('{"event":"bogus","sequenceNumber":"1","streamSid":"MZ"}', "unknown event"),
        ('{"event":"media","sequenceNumber":"x","streamSid":"MZ","media":{}}', "sequenceNumber"),
        ('{"event":"media","sequenceNumber":"1","streamSid":"MZ","media":{"chunk":"1",'
         '"timestamp":"0","payload":"%%%"}}', "base64"),
        ('{"event":"media","sequenceNumber":"1","streamSid":"MZ","media":"x"}', "'media'"),
        ('{"event":"dtmf","sequenceNumber":"1","streamSid":"MZ","dtmf":{"digit":"Z"}}', "DTMF"),
        ('{"event":"mark","sequenceNumber":"1","streamSid":"MZ","mark":{}}', "'name'"),
        ('{"event":"stop","sequenceNumber":"1","streamSid":"MZ"}', "'stop'"),
    ],
)
def test_bad_messages_say_what_is_wrong(text: str, fragment: str) -> None:
    with pytest.raises(ProtocolError, match=fragment):
        parse_inbound(text)


def test_wrong_media_format_is_rejected() -> None:
    bad = json.loads(json.dumps(DOC_START))
    bad["start"]["mediaFormat"]["sampleRate"] = 16000
    with pytest.raises(ProtocolError, match="mediaFormat"):
        parse_inbound(json.dumps(bad))


def test_oversized_message_and_payload_are_rejected() -> None:
    with pytest.raises(ProtocolError, match="limit"):
        parse_inbound("x" * (MAX_MESSAGE_CHARS + 1))
    big = base64.b64encode(b"\xff" * 20000).decode()
    msg = json.dumps({"event": "media", "sequenceNumber": "1", "streamSid": "MZ",
                      "media": {"chunk": "1", "timestamp": "0", "payload": big}})
    with pytest.raises(ProtocolError, match="larger"):
        parse_inbound(msg)
    with pytest.raises(ProtocolError):
        media_message("MZ", b"\xff" * 20000)


@given(
    payload=st.binary(min_size=0, max_size=2000),
    ts=st.integers(min_value=0, max_value=10**9),
    digit=st.sampled_from(list("0123456789*#")),
    name=st.text(min_size=1, max_size=60),
    params=st.dictionaries(st.text(max_size=20), st.text(max_size=40), max_size=5),
)
@settings(max_examples=200, deadline=None)
def test_round_trip_both_directions(
    payload: bytes, ts: int, digit: str, name: str, params: dict[str, str]
) -> None:
    b = InboundBuilder("MZ1", "CA1", "AC1")
    start = parse_inbound(b.start(params))
    assert isinstance(start, Start) and start.custom_parameters == params
    media = parse_inbound(b.media(payload, ts))
    assert isinstance(media, Media) and media.payload == payload and media.timestamp == ts
    assert media.sequence_number == start.sequence_number + 1
    assert parse_inbound(b.dtmf(digit)) == Dtmf("MZ1", digit, "inbound_track", 3)
    assert parse_inbound(b.mark(name)) == Mark("MZ1", name, 4)
    assert parse_outbound(media_message("MZ1", payload)) == OutMedia("MZ1", payload)
    assert parse_outbound(mark_message("MZ1", name)) == OutMark("MZ1", name)
    assert parse_outbound(clear_message("MZ1")) == OutClear("MZ1")


@given(st.one_of(st.text(max_size=300), st.binary(max_size=300)))
@settings(max_examples=500, deadline=None)
def test_garbage_only_ever_raises_protocol_error(garbage: str | bytes) -> None:
    try:
        parse_inbound(garbage)
    except ProtocolError:
        pass


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)


@given(
    event=st.sampled_from(["connected", "start", "media", "mark", "dtmf", "stop", "x"]),
    body=st.dictionaries(
        st.sampled_from(["sequenceNumber", "streamSid", "start", "media", "mark", "dtmf",
                         "stop", "protocol", "version"]),
        json_values,
    ),
)
@settings(max_examples=500, deadline=None)
def test_structured_garbage_only_ever_raises_protocol_error(event: str, body: dict) -> None:
    try:
        parse_inbound(json.dumps({"event": event, **body}))
    except ProtocolError:
        pass


@pytest.mark.parametrize("seq", ["²", "١٢", "1 ", "-1"])
def test_non_ascii_digits_are_a_protocol_error(seq: str) -> None:
    msg = json.dumps({"event": "media", "sequenceNumber": seq, "streamSid": "MZ1",
                      "media": {"chunk": "1", "timestamp": "0", "payload": ""}})
    with pytest.raises(ProtocolError, match="sequenceNumber"):
        parse_inbound(msg)


def test_stream_sid_that_would_break_our_json_is_refused() -> None:
    msg = json.dumps({"event": "media", "sequenceNumber": "1", "streamSid": 'MZ","x":"',
                      "media": {"chunk": "1", "timestamp": "0", "payload": ""}})
    with pytest.raises(ProtocolError, match="SID"):
        parse_inbound(msg)
