"""The voice webhook's side of a new call: which flow answers it (as its flow webhook
personalises it), and its model session opened at once with that flow, while Twilio
fetches the TwiML and dials the media stream."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from agent.flow_tools import tools_for
from agent.flows import Flows
from agent.service.admission import Admission
from agent.service.flow_resolver import RESOLUTION_PARAMETER, FlowResolver
from agent.service.prewarm import WarmSessions
from agent.service.sessions import SessionFactory
from agent.service.settings import Settings
from telephony.webhook import FlowChoice

log = logging.getLogger(__name__)


class Reception:
    def __init__(
        self,
        settings: Settings,
        flows: Flows,
        session_factory: SessionFactory,
        warm: WarmSessions,
        admission: Admission,
        resolver: FlowResolver,
    ) -> None:
        self.settings = settings
        self.flows = flows
        self.session_factory = session_factory
        self.warm = warm
        self.admission = admission
        self.resolver = resolver
        self.call_status: dict[str, str] = {}

    async def choose_flow(self, form: Mapping[str, str]) -> FlowChoice | None:
        static = self.flows.choose(form.get("To"), form.get("flow"))
        if static is None:
            return None
        resolution, resolution_id = await self.resolver.on_webhook(static, form)
        flow = resolution.flow
        if self.settings.prewarm_sessions and not self.admission.busy():
            # Twilio has yet to fetch this TwiML and dial the stream: open the model now,
            # configured as the flow webhook resolved it.
            _, specs = tools_for(flow.tools, self.settings.tool_delays_ms, self.resolver.http)
            session = self.session_factory(flow, specs, self.settings)
            self.warm.start(form.get("CallSid", ""), flow.name, session)
        extra = {RESOLUTION_PARAMETER: resolution_id} if resolution_id else {}
        return FlowChoice(flow.name, extra)

    def on_status(self, form: Mapping[str, str]) -> None:
        sid, status = form.get("CallSid", ""), form.get("CallStatus", "")
        self.call_status[sid] = status
        log.info("call %s status %s", sid, status)
