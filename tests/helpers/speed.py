"""How fast emulated phones run in tests that check what happens, not when.

`EmulatedCall(target, speed=BEHAVIOUR_SPEED)` plays caller audio and bot audio four times
faster than real time, with the call's own clock (20 ms frames, mark echoes once audio
has played, quiet before the caller talks again) scaled alike. Use it where a test
asserts tools, records, metrics, transcripts, outcomes or audio lengths in call time.

Keep real time (the default) wherever the assertion is about wall-clock timing or needs
call time and wall time to agree: latency figures, pacing and playback lead, mark round
trips, barge-in truncation at what was heard, filler onset (a tool's delay and
`filler_after_ms` are wall clock), lost or late frames, overload lag, drain deadlines,
and every call through the offline speech engine (it synthesises a reply sentence by
sentence in wall time: sped up, a slow sentence on a busy machine sounds like the end
of the reply and the caller talks over the rest).
"""

from __future__ import annotations

BEHAVIOUR_SPEED = 4.0
