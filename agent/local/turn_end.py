"""When a caller turn ends, and what answers it.

- At the caller's first pause the engine transcribes what it has (speculatively); if
  those words finish the turn (`DialogPolicy.sounds_complete`), or a barge-in turns out
  to be a wordless blip, the turn ends after `EARLY_END_MS` of quiet instead of the
  flow's full silence; a finished sentence when nothing was asked
  (`DialogPolicy.sounds_finished`), whose details may still follow a breath, after
  `REQUEST_END_MS`. If the caller speaks again first, the request lapses.
- A turn that interrupted a reply is answered by the rest of that reply when it was
  noise (`barge_in.is_noise`), else by the policy, told what the caller heard.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from .barge_in import Interrupted, is_noise
from .dialog import Reply
from .listener import Listener, Turn
from .stt import Transcript

__all__ = ["EARLY_END_MS", "REQUEST_END_MS", "after_barge_in", "judge_pause"]

EARLY_END_MS = 256  # quiet that ends a turn whose words are complete (8 VAD windows)
# Quiet that ends a finished sentence: over 97% of the pauses inside callers' sentences in
# the tuning lines and bundled calls were shorter (12 VAD windows).
REQUEST_END_MS = 384
log = logging.getLogger(__name__)

Plan = Callable[[], Awaitable[Reply]]


async def judge_pause(
    listener: Listener,
    turn: Turn,
    pause_at: int,
    speculative: asyncio.Future[Transcript],
    sounds_complete: Callable[[str], bool] | None,
    says: Callable[[str], bool],
    sounds_finished: Callable[[str], bool] | None = None,
) -> None:
    """Once the pause's transcript is in, end the turn early if it is complete.
    The judges are None when the policy cannot judge now (input still queued)."""
    try:
        transcript = await asyncio.shield(speculative)
    except (asyncio.CancelledError, Exception):  # stale guess, or a failed one: no opinion
        return
    if listener.turn is not turn or turn.speculative is not speculative:
        return  # the caller went on (or the turn already ended)
    text = transcript.text
    blip = turn.over_reply and is_noise(pause_at - turn.start_ms, text, says)
    if blip or (sounds_complete is not None and text and sounds_complete(text)):
        listener.end_early(pause_at, EARLY_END_MS)
    elif sounds_finished is not None and text and sounds_finished(text):
        listener.end_early(pause_at, REQUEST_END_MS)


def after_barge_in(
    pending: Interrupted,
    voiced_ms: int,
    heard_text: Awaitable[str],
    forget_turn: Callable[[], None],
    truncated: Callable[[str, str], None],
    respond: Plan,
    says: Callable[[str], bool],
) -> Plan:
    """The plan for the turn that interrupted `pending`: resume it if the turn was noise
    (`forget_turn` drops the turn from the policy's input), else answer as usual."""

    async def plan() -> Reply:
        text = await heard_text
        log.info("barge-in over the reply: %d ms of voice, %r", voiced_ms, text)
        if is_noise(voiced_ms, text, says):
            rest = pending.remainder()
            if rest is not None:
                log.info("noise over the reply (%d ms, %r): resuming it", voiced_ms, text)
                forget_turn()
                return rest
        if pending.heard is not None and pending.item_id is not None:
            truncated(pending.item_id, pending.heard)
        return await respond()

    return plan
