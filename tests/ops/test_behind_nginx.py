"""The shipped deployment, for real: deploy/nginx.conf (Debian's nginx) in front of two
`phone-agent serve` processes configured as deploy/docker-compose.yml configures them
(no PUBLIC_URL, TRUST_FORWARDED_HEADERS=true, ADMIN_PORT, STREAM_ROUTE app1/app2),
sharing the real Redis, with a fake OpenAI server as the model.

The emulated Twilio signs each webhook for https://agent.example.test, the address of
a TLS terminator in front of nginx; the requests carry what that terminator sends
(Host, X-Forwarded-Proto: https). Proves:
(a) signed calls are answered with a wss:// stream on the public host, and the stream
    reaches the instance that answered (its warm model session used: none wasted), with
    every caller frame reaching the model and every bot frame reaching the caller;
(b) a stream sent to the other instance works too (shared token secret + Redis), and
    an admin hang-up on the instance that does not hold the call ends it;
(c) without the stream routes (every stream to any instance, as before them) warmed
    sessions are wasted: measured and printed;
(d) through nginx only Twilio's routes exist; admin and metrics only on the admin port;
    forged webhooks get 403.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from twilio.request_validator import RequestValidator

from agent.devkit.fake_openai import FakeOpenAIRealtime, Scenario
from agent.devkit.fake_openai.scenario import FakeSession
from telephony.testing.emulator import EmulatedCall, StreamTarget, dial_webhook
from tests.ops.cluster import DESK_NUMBER, Cluster, cluster
from tests.ops.conftest import delete_matching, require_redis
from tests.ops.nginx import run_nginx
from tests.ops.procs import ServerProcess

pytestmark = pytest.mark.asyncio(loop_scope="module")

PUBLIC = "https://agent.example.test"  # the TLS terminator Twilio calls
# What that terminator passes on to nginx (deploy/nginx.conf keeps X-Forwarded-Proto).
FRONT_HEADERS = {"Host": urlsplit(PUBLIC).netloc, "X-Forwarded-Proto": "https"}
ROUTES = ("app1", "app2")  # STREAM_ROUTE of each instance, as in docker-compose.yml
SPEED = 4.0  # emulated call time runs 4x: a greeting plays in a quarter of its length


@dataclass
class Deployment:
    run: Cluster
    proxy: str  # nginx's base URL
    fake: FakeOpenAIRealtime

    def by_route(self, route: str) -> ServerProcess:
        return self.run.servers[ROUTES.index(route)]

    async def dial(self) -> StreamTarget:
        """Twilio's signed webhook, through the front door."""
        async with httpx.AsyncClient(headers=FRONT_HEADERS, timeout=15) as client:
            target = await dial_webhook(self.proxy, self.run.auth_token, to=DESK_NUMBER,
                                        from_=self.run.caller, public_url=PUBLIC, client=client)
        self.run.call_sids.append(target.call_sid)
        return target

    def media_url(self, path: str) -> str:
        return self.proxy.replace("http://", "ws://", 1) + path

    def admin(self, server: ServerProcess) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=server.admin_url, timeout=15,
                                 headers={"Authorization": f"Bearer {self.run.admin_token}"})


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def deployment(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Deployment]:
    redis_url = require_redis()
    tmp: Path = tmp_path_factory.mktemp("behind-nginx")
    # As docker-compose.yml sets them (ADMIN_PORT 0: any free port, as PORT here); a
    # Redis prefix of this run's own, so parallel runs never see each other's calls.
    prefix = f"test-nginx-{uuid.uuid4().hex[:10]}"
    compose_env = {"TRUST_FORWARDED_HEADERS": "true", "ADMIN_PORT": "0", "REDIS_PREFIX": prefix}
    try:
        async with (
            FakeOpenAIRealtime(Scenario()) as fake,
            cluster(tmp, instances=2, openai_url=fake.url, openai_key=fake.scenario.api_key,
                    redis_url=redis_url, extra_env=compose_env, public_urls=False,
                    instance_env=[{"STREAM_ROUTE": route} for route in ROUTES]) as run,
        ):
            upstreams = {f"{route}:8000": urlsplit(s.base_url).netloc
                         for route, s in zip(ROUTES, run.servers, strict=True)}
            async with run_nginx(tmp, upstreams) as proxy:
                yield Deployment(run, proxy, fake)
    finally:
        client = aioredis.from_url(redis_url)
        try:
            await delete_matching(client, "{" + prefix + "}*", prefix + ":*")
        finally:
            await client.aclose()


async def call_once(dep: Deployment, stream_path: str | None = None) -> tuple[StreamTarget, EmulatedCall, FakeSession, int]:
    """Dial, hear the greeting, hang up. The stream goes where the TwiML says, or to
    `stream_path` on nginx. Returns the call, the model session that served it, and how
    many other sessions it opened (warmed by the webhook, never used)."""
    before = len(dep.fake.sessions)
    target = await dep.dial()
    path = stream_path or urlsplit(target.stream_url).path
    async with EmulatedCall(target, ws_url=dep.media_url(path), speed=SPEED) as call:
        await call.wait_for_bot_reply(timeout=15)
        # The whole greeting, not only up to a pause: on a busy machine the audio can
        # stall for longer than the emulator's quiet window.
        await dep.fake.wait_for(lambda: greeting_done(dep.fake.sessions[before:]), 10)
        said_ms = sum(r.sent_ms for s in dep.fake.sessions[before:] for r in s.responses)
        await call.wait_until(lambda c: len(c.received_audio) >= said_ms * 8, 10)
    ours = dep.fake.sessions[before:]
    # The server closes the model session once it has passed on the caller's last frame.
    await dep.fake.wait_for(lambda: any(s.closed and s.appended_ms for s in ours), 10)
    (session,) = [s for s in ours if s.appended_ms]
    return target, call, session, len(ours) - 1


def greeting_done(sessions: list[FakeSession]) -> bool:
    responses = [r for s in sessions for r in s.responses]
    return bool(responses) and all(r.status != "in_progress" for r in responses)


def assert_no_lost_frames(call: EmulatedCall, session: FakeSession) -> None:
    # Caller -> model: every 20 ms frame the phone sent was appended to the model's buffer.
    assert session.appended_ms == call.frames_sent * 20, (session.appended_ms, call.frames_sent)
    # Model -> caller: all the greeting's audio arrived (160 bytes of μ-law per 20 ms).
    said_ms = sum(r.sent_ms for r in session.responses)
    assert said_ms > 0 and len(call.received_audio) == said_ms * 8


async def test_signed_calls_reach_the_instance_that_answered_and_waste_no_session(
    deployment: Deployment,
) -> None:
    dep = deployment
    routes, wasted = [], 0
    for _ in range(4):
        target, call, session, unused = await call_once(dep)
        stream = urlsplit(target.stream_url)
        # Rebuilt from the forwarded headers: the public host, wss://, this instance's route.
        assert (stream.scheme, stream.netloc) == ("wss", urlsplit(PUBLIC).netloc), target.stream_url
        route = stream.path.removeprefix("/twilio/media/")
        assert route in ROUTES, target.stream_url
        routes.append(route)
        assert target.warnings == ()  # nothing real Twilio would choke on
        assert not call.violations and call.closed
        assert_no_lost_frames(call, session)
        wasted += unused
    assert set(routes) == set(ROUTES)  # nginx spread the webhooks over both instances
    print(f"\nstream routes on: {wasted} of 4 warmed sessions wasted")
    assert wasted == 0
    # Each instance counted the sessions its own streams claimed.
    claimed = 0
    for server in dep.run.servers:
        async with dep.admin(server) as admin:
            text = (await admin.get("/metrics")).text
        claimed += sum(int(float(line.rsplit(" ", 1)[1])) for line in text.splitlines()
                       if line.startswith('phone_agent_prewarmed_sessions_total{outcome="claimed"}'))
    assert claimed >= 4


async def test_stream_on_the_other_instance_works_and_hangs_up_from_the_first(
    deployment: Deployment,
) -> None:
    dep = deployment
    target = await dep.dial()
    answered = urlsplit(target.stream_url).path.removeprefix("/twilio/media/")
    other = ROUTES[1 - ROUTES.index(answered)]
    holder, first = dep.by_route(other), dep.by_route(answered)
    async with dep.admin(first) as on_first, dep.admin(holder) as on_holder:
        holder_id = (await on_holder.get("/admin/calls")).json()["instance"]
        # The stream goes to the instance that did not answer the webhook.
        async with EmulatedCall(target, ws_url=dep.media_url(f"/twilio/media/{other}"), speed=SPEED) as call:
            await call.wait_for_bot_reply(timeout=15)
            live = {c["call_sid"]: c for c in (await on_first.get("/admin/calls")).json()["live"]}
            assert live[target.call_sid]["instance"] == holder_id
            r = await on_first.post(f"/admin/calls/{target.call_sid}/hangup")
            assert r.status_code == 200, r.text
            assert r.json()["ended"] is True and r.json()["instance"] == holder_id
            await call.wait_closed(5)
            assert call.closed_by_server


async def test_without_stream_routes_warmed_sessions_are_wasted(deployment: Deployment) -> None:
    """Every stream to plain /twilio/media, which nginx spreads over both instances, as
    every stream went before the routes: how many warmed sessions go unused?"""
    dep = deployment
    calls, wasted = 6, 0
    for _ in range(calls):
        _, call, session, unused = await call_once(dep, "/twilio/media")
        assert_no_lost_frames(call, session)
        wasted += unused
    print(f"\nwithout stream routes: {wasted} of {calls} warmed sessions wasted")
    assert wasted > 0


async def test_only_twilio_routes_are_public(deployment: Deployment) -> None:
    dep = deployment
    a = dep.run.servers[0]
    async with httpx.AsyncClient(base_url=dep.proxy, headers=FRONT_HEADERS, timeout=10) as front:
        for path in ("/admin/calls", "/console/", "/metrics", "/healthz", "/readyz", "/"):
            assert (await front.get(path)).status_code == 404, path
        # A webhook signed with the wrong key, or with the empty key, is refused.
        form = {"CallSid": "CA" + secrets.token_hex(16), "From": dep.run.caller, "To": DESK_NUMBER}
        for key in ("not-the-token", ""):
            signature = RequestValidator(key).compute_signature(PUBLIC + "/twilio/voice", form)
            r = await front.post("/twilio/voice", data=form, headers={"X-Twilio-Signature": signature})
            assert r.status_code == 403, (key, r.text)
    async with httpx.AsyncClient(base_url=a.base_url, timeout=10) as public:
        for path in ("/admin/calls", "/console/", "/metrics"):
            assert (await public.get(path)).status_code == 404, path
        assert (await public.get("/readyz")).status_code == 200  # the orchestrator's probe
    async with dep.admin(a) as admin:
        assert (await admin.get("/admin/calls")).status_code == 200
        assert "phone_agent_active_calls" in (await admin.get("/metrics")).text
        assert (await admin.get("/console/")).status_code == 200
    async with httpx.AsyncClient(base_url=a.admin_url, timeout=10) as anonymous:
        assert (await anonymous.get("/admin/calls")).status_code == 401
