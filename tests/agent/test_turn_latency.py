"""Issue 14: the server's voice-to-voice figure is what the caller waits.

The emulated phone knows the truth: when the caller's last speech frame went out and
when the first bot frame started to play. The call record must say the same within
50 ms, turn by turn, with OpenAI's protocol (the fake server's speech-stopped) and the
offline engine. Also the pieces: mapping the provider's position onto the caller's
audio, the Gemini energy fallback, and the end point at the first echo."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from agent.devkit import BUNDLED_CALLS
from agent.devkit.fake_openai import FakeOpenAIRealtime, Scenario, ScriptedTurn
from agent.devkit.runner import business_today, record_collector, run_script
from agent.devkit.scripts import load_script
from agent.devkit.stack import local_stack
from agent.turn_clock import TurnClock
from telephony.audio import pcm16_to_ulaw
from tests.agent.conftest import dial, speech_like

QUIET = b"\xff" * 160
LOUD = speech_like(20)


def test_the_providers_bound_maps_onto_the_last_loud_frame_before_it() -> None:
    clock = TurnClock()
    for i in range(50):  # 1 s of speech, then 1 s of quiet, a frame every 20 ms from t=10 s
        clock.caller_frame(LOUD if i < 25 else QUIET, 10.0 + 0.02 * i)
    for i in range(50, 100):
        clock.caller_frame(QUIET, 10.0 + 0.02 * i)
    assert clock.arrival_of(1000) == pytest.approx(10.0 + 0.02 * 49)
    assert clock.arrival_of(5000) is None  # not arrived yet
    # OpenAI's audio_end_ms includes the silence that ended the turn (here 500 ms): the
    # speech itself ended with the last loud frame, at 500 ms.
    clock.speech_stopped(1000, now=12.0)
    assert clock.first_audio("item_1", now=11.5, energy_fallback=False)
    assert not clock.first_audio("item_1", now=11.6, energy_fallback=False)  # the first only
    latency = clock.close(heard_at=11.7)
    assert latency is not None and latency.end == "heard" and latency.start == "provider"
    assert latency.ms == pytest.approx((11.7 - 10.48) * 1000)
    assert clock.close(heard_at=12.0) is None  # closed once


def test_without_an_echo_the_sent_time_stands_in() -> None:
    clock = TurnClock()
    clock.caller_frame(LOUD, 5.0)
    clock.speech_stopped(20, now=5.5)
    clock.first_audio("a", now=5.3, energy_fallback=False)
    latency = clock.close(heard_at=None)
    assert latency is not None and latency.end == "sent" and latency.ms == pytest.approx(300)


def test_line_noise_is_not_speech() -> None:
    hiss = pcm16_to_ulaw((np.random.default_rng(1).normal(0, 600, 160)).astype("<i2").tobytes())
    clock = TurnClock()
    for i in range(100):  # 2 s of hiss at about -35 dBFS: the floor learns it
        clock.caller_frame(hiss, 1.0 + 0.02 * i)
    clock.caller_frame(LOUD, 3.00)
    for i in range(20):
        clock.caller_frame(hiss, 3.02 + 0.02 * i)
    clock.speech_stopped(clock.caller_ms, now=3.5)
    clock.first_audio("a", now=3.6, energy_fallback=False)
    latency = clock.close(heard_at=3.7)
    assert latency is not None and latency.ms == pytest.approx(700)


def test_gemini_has_no_speech_stopped_so_the_last_loud_frame_counts() -> None:
    clock = TurnClock()
    clock.caller_frame(LOUD, 1.00)
    clock.caller_frame(LOUD, 1.02)
    for i in range(10):
        clock.caller_frame(QUIET, 1.04 + 0.02 * i)
    assert clock.first_audio("a", now=1.5, energy_fallback=True)
    latency = clock.close(heard_at=1.6)
    assert latency is not None and latency.start == "energy"
    assert latency.ms == pytest.approx(580)
    clock.caller_spoke()
    assert not clock.first_audio("b", now=2.0, energy_fallback=True)  # no speech since


def test_a_barge_in_ends_the_turn_being_timed() -> None:
    clock = TurnClock()
    clock.caller_frame(LOUD, 1.0)
    clock.speech_stopped(20, now=1.2)
    clock.caller_spoke()
    assert not clock.first_audio("a", now=1.3, energy_fallback=False)


async def _compare(stack, records) -> list[tuple[float, float]]:  # noqa: ANN001
    target, call = await dial(stack, records, to="+15550002000", from_="+15551230001")
    async with call:
        await call.wait_for_bot_reply(timeout=15)
        turns = []
        for _ in range(3):
            # Speech, then the trailing silence a rendered line carries.
            await call.say(speech_like(700) + pcm16_to_ulaw(b"\x00\x00" * 8 * 200))
            turns.append(await call.wait_for_bot_reply(timeout=20))
    record = await asyncio.wait_for(records[target.call_sid], 10)
    truth = [t.response_latency_ms for t in turns]
    assert all(v is not None for v in truth)
    assert record.turn_latency_ends == ["heard"] * 3, record.turn_latency_ends
    return list(zip(record.turn_latencies_ms, truth, strict=True))


async def test_the_record_says_what_the_caller_waited_on_openai(tmp_path: Path) -> None:
    scenario = Scenario(turns=[ScriptedTurn(transcript=f"q{i}", reply="An answer.") for i in range(3)])
    async with FakeOpenAIRealtime(scenario) as fake:
        records: dict = {}
        async with local_stack(data_dir=tmp_path, engine=False, realtime_url=fake.url,
                               openai_api_key=scenario.api_key) as stack:
            stack.watch(record_collector(records))
            pairs = await _compare(stack, records)
    for recorded, truth in pairs:
        assert abs(recorded - truth) <= 50, pairs


@pytest.mark.local
@pytest.mark.speech_call
async def test_the_record_says_what_the_caller_waited_on_the_offline_engine(tmp_path: Path) -> None:
    """A bundled recorded call (rendered lines with their trailing silence) through the
    engine: each turn's recorded figure within 50 ms of what the phone measured."""
    script = load_script(BUNDLED_CALLS / "order-status.yaml")
    today = business_today(script)
    records: dict = {}
    async with local_stack(data_dir=tmp_path, tools_today=today.isoformat()) as stack:
        stack.watch(record_collector(records))
        result = await run_script(script, base_url=stack.base_url, auth_token=stack.auth_token,
                                  records=records, store=stack.store, today=today)
    assert result.record is not None
    truth = result.latencies_ms
    recorded = result.record.turn_latencies_ms
    assert len(truth) == len(recorded) == 2, (truth, recorded)
    assert result.record.turn_latency_ends == ["heard", "heard"]
    for got, want in zip(recorded, truth, strict=True):
        assert abs(got - want) <= 50, (recorded, truth)


def test_a_speech_end_read_late_is_placed_by_the_frames_read_on_time() -> None:
    # The server's loop was busy for 180 ms as the caller's last words came in: those
    # frames were read in one burst, the silence after them on time again.
    clock = TurnClock()
    for i in range(300):  # 6 s of real-time audio from t=1 s: speech up to 6 s, then quiet
        sent = 1.0 + 0.02 * (i + 1)
        read = max(sent, 6.18) if i >= 236 else sent  # frames from 5.74 s read at 6.18
        clock.caller_frame(LOUD if i < 250 else QUIET, read)
    clock.speech_stopped(5500, now=7.0)
    clock.first_audio("a", now=7.1, energy_fallback=False)
    latency = clock.close(heard_at=7.2)
    assert latency is not None
    assert latency.ms == pytest.approx((7.2 - 6.0) * 1000)


def test_a_phone_faster_than_real_time_is_timed_as_it_came() -> None:
    clock = TurnClock()
    for i in range(300):  # an emulated phone at 4x: a 20 ms frame every 5 ms
        clock.caller_frame(LOUD if i < 250 else QUIET, 1.0 + 0.005 * (i + 1))
    clock.speech_stopped(5500, now=3.0)
    clock.first_audio("a", now=3.1, energy_fallback=False)
    latency = clock.close(heard_at=3.2)
    assert latency is not None and latency.ms == pytest.approx((3.2 - 2.25) * 1000)
