"""The model session opens during the voice webhook, before Twilio dials the stream."""

from __future__ import annotations

from pathlib import Path

from agent.devkit.fake_openai import FakeOpenAIRealtime, Scenario
from agent.devkit.stack import local_stack
from telephony.testing.emulator import EmulatedCall, dial_webhook
from tests.helpers.speed import BEHAVIOUR_SPEED

ORDER_TO = "+15550002000"  # the example flows route this number to order-status
CALLER = "+15551230001"


def _configured(fake: FakeOpenAIRealtime, n: int) -> bool:
    return len(fake.sessions) == n and all(
        any(e.get("type") == "session.update" for e in s.received) for s in fake.sessions
    )


async def test_the_session_is_ready_before_the_stream_and_the_call_uses_it(tmp_path: Path) -> None:
    async with FakeOpenAIRealtime(Scenario()) as fake:
        async with local_stack(
            data_dir=tmp_path, engine=False, realtime_url=fake.url, openai_api_key="test-key"
        ) as stack:
            target = await dial_webhook(stack.base_url, stack.auth_token, to=ORDER_TO, from_=CALLER)
            # Twilio has only got the TwiML: the model session is already open and set up.
            await fake.wait_for(lambda: _configured(fake, 1), 5)
            async with EmulatedCall(target, speed=BEHAVIOUR_SPEED) as call:
                greeting = await call.wait_for_bot_reply(timeout=10)
            assert greeting.bot_audio_played_ms > 300
            assert len(fake.sessions) == 1  # the warmed one: no second session
            assert len(stack.service.warm) == 0
        fake.assert_clean()


async def test_an_unclaimed_session_is_closed_after_its_ttl(tmp_path: Path) -> None:
    async with FakeOpenAIRealtime(Scenario()) as fake:
        async with local_stack(
            data_dir=tmp_path, engine=False, realtime_url=fake.url, openai_api_key="test-key",
            prewarm_ttl_s=0.5,
        ) as stack:  # fmt: skip
            await dial_webhook(stack.base_url, stack.auth_token, to=ORDER_TO, from_=CALLER)
            await fake.wait_for(lambda: _configured(fake, 1), 5)
            # The caller hung up while it rang: no stream ever comes.
            await fake.wait_for(lambda: fake.sessions[0].closed, 5)
            assert len(stack.service.warm) == 0


async def test_without_prewarm_the_session_waits_for_the_stream(tmp_path: Path) -> None:
    async with FakeOpenAIRealtime(Scenario()) as fake:
        async with local_stack(
            data_dir=tmp_path, engine=False, realtime_url=fake.url, openai_api_key="test-key",
            prewarm_sessions=False,
        ) as stack:  # fmt: skip
            target = await dial_webhook(stack.base_url, stack.auth_token, to=ORDER_TO, from_=CALLER)
            assert fake.sessions == [] and len(stack.service.warm) == 0
            async with EmulatedCall(target, speed=BEHAVIOUR_SPEED) as call:
                await call.wait_for_bot_reply(timeout=10)
            assert len(fake.sessions) == 1
