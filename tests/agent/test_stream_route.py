"""STREAM_ROUTE: the webhook names its instance in the stream URL, so a proxy can send
the stream back where the model session is warm; any instance still takes any route."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import httpx

from agent.devkit.fake_openai import FakeOpenAIRealtime, Scenario
from agent.devkit.stack import local_stack
from telephony.testing.emulator import EmulatedCall, dial_webhook

ORDER_TO = "+15550002000"
CALLER = "+15551230003"


async def test_the_stream_url_names_the_instance_and_the_warm_session_is_claimed(tmp_path: Path) -> None:
    async with FakeOpenAIRealtime(Scenario()) as fake:
        async with local_stack(data_dir=tmp_path, engine=False, realtime_url=fake.url,
                               openai_api_key="test-key", stream_route="app7") as stack:
            target = await dial_webhook(stack.base_url, stack.auth_token, to=ORDER_TO, from_=CALLER)
            assert urlsplit(target.stream_url).path == "/twilio/media/app7"
            async with EmulatedCall(target) as call:
                await call.wait_for_bot_reply(timeout=10)
            # Another instance's route, e.g. the proxy's fallback when app7 is gone.
            other = await dial_webhook(stack.base_url, stack.auth_token, to=ORDER_TO, from_=CALLER)
            elsewhere = stack.base_url.replace("http://", "ws://") + "/twilio/media/app8"
            async with EmulatedCall(other, ws_url=elsewhere) as call:
                await call.wait_for_bot_reply(timeout=10)
            async with httpx.AsyncClient(base_url=stack.base_url) as http:
                text = (await http.get("/metrics")).text
    assert len(fake.sessions) == 2  # both warmed sessions used, none opened twice
    assert 'phone_agent_prewarmed_sessions_total{outcome="claimed"} 2.0' in text
