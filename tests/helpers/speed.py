"""How fast emulated phones run in tests that check what happens, not when.

`EmulatedCall(target, speed=BEHAVIOUR_SPEED)` plays caller audio and bot audio four times
faster than real time, with the call's own clock (20 ms frames, mark echoes once audio
has played, quiet before the caller talks again) scaled alike. Use it where a test
asserts tools, records, metrics, transcripts, outcomes or audio lengths in call time.

Keep real time (the default) wherever the assertion is about wall-clock timing or needs
call time and wall time to agree: latency figures, pacing and playback lead, mark round
trips, barge-in truncation at what was heard, filler onset (a tool's delay and
`filler_after_ms` are wall clock), lost or late frames, overload lag, drain deadlines.

Calls through the offline speech engine that check behaviour (the bundled calls, the
eval's whole calls) run at SPEECH_CALL_SPEED, with the caller's "the bot has finished"
quiet kept at SPEECH_CALL_QUIET_MS of *wall* time: the engine synthesises a reply
sentence by sentence in wall time, and on a busy machine a slow sentence must not sound
like the end of the reply (the caller would talk over the rest). At 2x with three such
calls at once, 0 of 2 x 17 bundled calls needed their retry (measured beside the rest
of the suite on 2 cores).
"""

from __future__ import annotations

BEHAVIOUR_SPEED = 4.0
SPEECH_CALL_SPEED = 2.0
SPEECH_CALL_QUIET_MS = 700 * SPEECH_CALL_SPEED  # call time: 700 ms of wall time
