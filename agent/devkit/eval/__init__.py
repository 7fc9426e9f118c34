"""`phone-agent eval`: how well the offline engine understands callers it was never tuned on.

Two sets live here, each a folder with the same layout:

    tuning/      the engine's understanding may be tuned on these
    heldout/     never tuned on: the number the engine is judged by
      utterances.yaml   caller utterances with the intent and slots meant
      lines/            generated call scripts that render those utterances (+ audio/)
      calls/            whole call scripts (+ audio/), the bundled fixture format
      bookings.yaml     appointments that exist before a call starts

Utterance level: the rendered audio -> the engine's recogniser -> the policy's
understanding, against what the caller meant; the written text -> the same understanding,
to tell recognition errors from understanding errors. Call level: each whole call through
the in-process stack with the offline engine; task success per call.

Modules: `sets` (loading, rendering plan), `scoring` (one utterance against what was
meant), `utterances` (running them), `calls` (running whole calls), `report` (tables,
JSON), `command` (the CLI).
"""

from pathlib import Path

EVAL_DIR = Path(__file__).parent
SET_NAMES = ("heldout", "tuning")
