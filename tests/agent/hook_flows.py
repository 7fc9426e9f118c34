"""A flows file wired to the stand-in customer backend (tests/fakes/customer_backend.py):
a flow webhook and HTTP tools, for the call tests of both."""

from __future__ import annotations

from pathlib import Path

SECRET_ENV = "ACME_BACKEND_SECRET"
KNOWN_CALLER = "+15551230001"  # the stand-in greets them by name (Maria)
STRANGER = "+15559870000"
ORDERS_TO = "+15550002000"

FLOWS = """\
default_flow: orders
flows:
  orders:
    provider: {provider}
    voice: {voice}
    greeting: "Hi, you've reached Acme orders."
    instructions: "You help callers with Acme orders."
    filler_after_ms: 300
    filler_phrases: ["One moment please."]
    {webhook}
    tools:
      - name: lookup_order
        description: Look up an Acme order by its number.
        parameters:
          type: object
          properties:
            order_number: {{type: string, description: The order number.}}
          required: [order_number]
          additionalProperties: false
        url: "{base}/tools/order"
        idempotent: true
        secret_env: {secret_env}
      - name: slow_lookup
        description: Look up an order in the slow archive.
        parameters: {{type: object, properties: {{order_number: {{type: string}}}}, required: [order_number]}}
        url: "{base}/tools/slow-order"
        timeout_s: 5
        secret_env: {secret_env}
      - name: broken_lookup
        description: Look up an order in the broken system.
        parameters: {{type: object, properties: {{order_number: {{type: string}}}}}}
        url: "{base}/tools/broken"
        timeout_s: 3
        idempotent: true
        secret_env: {secret_env}
      - name: text_lookup
        description: Look up an order where the answer is plain text.
        parameters: {{type: object, properties: {{order_number: {{type: string}}}}}}
        url: "{base}/tools/text"
        idempotent: true
        secret_env: {secret_env}
      - transfer_call
      - end_call
"""


def write_flows(
    tmp_path: Path, base: str, *, provider: str = "openai", hook: str | None = "/flow",
    timeout_ms: int = 1500,
) -> Path:  # fmt: skip
    """`hook`: the stand-in's webhook path (None: no webhook)."""
    webhook = (
        f'webhook: {{url: "{base}{hook}", timeout_ms: {timeout_ms}, secret_env: {SECRET_ENV}}}'
        if hook is not None else ""
    )  # fmt: skip
    voice = "Kore" if provider == "gemini" else "marin"
    path = tmp_path / "flows.yaml"
    path.write_text(FLOWS.format(provider=provider, voice=voice, webhook=webhook, base=base,
                                 secret_env=SECRET_ENV))
    return path
