"""The voice webhook's side of a new call: which flow answers it, and its model session
opened at once, while Twilio fetches the TwiML and dials the media stream."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from agent.flow_tools import tools_for
from agent.flows import Flows
from agent.service.admission import Admission
from agent.service.prewarm import WarmSessions
from agent.service.sessions import SessionFactory
from agent.service.settings import Settings

log = logging.getLogger(__name__)


class Reception:
    def __init__(
        self,
        settings: Settings,
        flows: Flows,
        session_factory: SessionFactory,
        warm: WarmSessions,
        admission: Admission,
    ) -> None:
        self.settings = settings
        self.flows = flows
        self.session_factory = session_factory
        self.warm = warm
        self.admission = admission
        self.call_status: dict[str, str] = {}

    def choose_flow(self, form: Mapping[str, str]) -> str | None:
        flow = self.flows.choose(form.get("To"), form.get("flow"))
        if flow is None:
            return None
        if self.settings.prewarm_sessions and not self.admission.busy():
            # Twilio has yet to fetch this TwiML and dial the stream: open the model now.
            _, specs = tools_for(flow.tools, self.settings.tool_delays_ms)
            session = self.session_factory(flow, specs, self.settings)
            self.warm.start(form.get("CallSid", ""), flow.name, session)
        return flow.name

    def on_status(self, form: Mapping[str, str]) -> None:
        sid, status = form.get("CallSid", ""), form.get("CallStatus", "")
        self.call_status[sid] = status
        log.info("call %s status %s", sid, status)
