"""The test kit: everything that drives the service from outside, as Twilio would.

Call scripts and the bundled recorded calls (`calls/`), rendering and recording import,
the call runner (`phone-agent call`), the load tester and its report, the in-process
stack, and the fake OpenAI Realtime server that `loadtest --provider fake-openai` runs.
The service never imports this package.
"""

from pathlib import Path

BUNDLED_CALLS = Path(__file__).with_name("calls")
DEMO_CALL = BUNDLED_CALLS / "booking.yaml"
