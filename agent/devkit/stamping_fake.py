"""The fake OpenAI server as a load run uses it: it times the clock stamps the phone
wrote into caller frames, and stamps the first audio of each reply (`bridge_probe`)."""

from __future__ import annotations

import base64
from typing import Any

from agent.devkit.bridge_probe import STAMP_BYTES, now_us, read_stamp, stamp_front, summary_us
from agent.devkit.fake_openai import SDK_CHECKS, FakeOpenAIRealtime

FRAME = 160  # bytes of μ-law per 20 ms
APPEND_HEAD = '{"type":"input_audio_buffer.append","audio":"'
# The same event as json.dumps writes it by default (a client that does not hand-build it).
APPEND_HEADS = (APPEND_HEAD, '{"type": "input_audio_buffer.append", "audio": "')


class StampingFake(FakeOpenAIRealtime):
    """The fake OpenAI server, timing stamped caller frames and stamping reply audio."""

    def __init__(self, scenario: Any) -> None:
        super().__init__(scenario)
        self.reset()

    def reset(self) -> None:
        self.in_lat_us: list[int] = []
        self.frames_in = 0
        self.audio_out_ms = 0
        self.stamped: set[str] = set()
        self.sessions = [s for s in self.sessions if not s.closed]

    async def _on_message(self, sess: Any, raw: str | bytes) -> None:
        t = now_us()
        # Fast path for the 50/s per call appends: the schema check (pydantic) per frame
        # would make the fake, not the bridge, the bottleneck; other events keep it.
        head = next((h for h in APPEND_HEADS if isinstance(raw, str) and raw.startswith(h)), "")
        if head:
            audio = base64.b64decode(raw[len(head) : -2])
            # The last frame's stamp: the one whose arrival sent the append. Frames before
            # it in the same append were held on purpose (a quiet line's batches,
            # agent/providers/openai/uplink.py); their wait is not the bridge's hop.
            sent = read_stamp(audio[-FRAME:][:STAMP_BYTES]) if len(audio) >= FRAME else None
            if sent is not None:
                self.in_lat_us.append(t - sent)
            self.frames_in += len(audio) // FRAME
            await self._on_append(sess, audio)
            return
        await super()._on_message(sess, raw)

    async def _send(self, sess: Any, ev: dict[str, Any], *, validate: bool = True) -> None:
        if ev.get("type") == "response.output_audio.delta":
            chunk = base64.b64decode(ev["delta"])
            self.audio_out_ms += len(chunk) // 8
            pcmu = sess.config["audio"]["output"]["format"].get("type") == "audio/pcmu"
            rid = ev["response_id"]
            if pcmu and rid not in self.stamped and len(chunk) >= FRAME:
                self.stamped.add(rid)
                ev = {**ev, "delta": base64.b64encode(stamp_front(chunk)).decode()}
        await super()._send(sess, ev, validate=validate)

    def stats(self) -> dict[str, Any]:
        return {
            "in_us": summary_us(self.in_lat_us),
            "frames_in": self.frames_in,
            "audio_out_ms": self.audio_out_ms,
            "stamped_out": len(self.stamped),
            "sessions": len(self.sessions),
            "open": sum(1 for s in self.sessions if not s.closed),
            "cancels": sum(len(s.cancels) for s in self.sessions),
            "violations": sum(len(s.violations) for s in self.sessions),
            "internal_errors": len(self.internal_errors),
            "sdk_checks": SDK_CHECKS,
        }
