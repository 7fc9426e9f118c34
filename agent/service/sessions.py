"""Opens the right realtime session for a flow."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from agent.flows import Flow
from agent.realtime import RealtimeSession, SessionConfig, ToolSpec
from agent.service.settings import Settings
from tools.schedule import AppointmentConfig

# Opens (but does not connect) the model session for a call of `flow`.
SessionFactory = Callable[[Flow, tuple[ToolSpec, ...], Settings], RealtimeSession]


def provider_of(flow: Flow, settings: Settings) -> str:
    return "local" if settings.force_local else flow.provider


def today_of(settings: Settings) -> dt.date:
    """The day the tools count from: TOOLS_TODAY, else today where the business is
    (APPT_TIMEZONE), which is what every model is told, the offline engine too."""
    if settings.tools_today:
        return dt.date.fromisoformat(settings.tools_today)
    return AppointmentConfig.from_env().now().date()


def make_session(flow: Flow, specs: tuple[ToolSpec, ...], settings: Settings) -> RealtimeSession:
    today = today_of(settings)
    # Tools take ISO dates; the model can only resolve "tomorrow" if it knows today.
    dated = f"{flow.instructions.rstrip()}\n\nToday is {today:%A}, {today.isoformat()}."
    config = SessionConfig(
        instructions=dated,
        model=flow.model,
        voice=flow.voice,
        tools=specs,
        language=flow.language,
        audio_format=flow.audio_format,
        turn_detection=flow.turn_detection,
        vad_threshold=flow.vad_threshold,
        vad_silence_ms=flow.vad_silence_ms,
        vad_eagerness=flow.vad_eagerness,
        noise_reduction=flow.noise_reduction,
    )
    provider = provider_of(flow, settings)
    if provider == "gemini":
        from agent.providers.gemini.session import GeminiLiveSession

        return GeminiLiveSession(config, url=settings.gemini_live_url, api_key=settings.gemini_api_key)
    from agent.providers.openai.session import OpenAIRealtimeSession

    if provider == "local":
        # The offline engine speaks OpenAI's protocol: one code path for both.
        # Its own token: the OpenAI key must never go to whatever listens at that URL.
        return OpenAIRealtimeSession(
            config, url=settings.local_engine_url, api_key=settings.local_engine_token or "local"
        )
    return OpenAIRealtimeSession(config, url=settings.openai_realtime_url, api_key=settings.openai_api_key)
