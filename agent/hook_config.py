"""What a flows file says about a customer's backend: the flow webhook and HTTP tools.

Both entries are checked when the file loads (URL scheme, a JSON Schema both providers
take, names the model accepts), so a mistake is a line-numbered error from `phone-agent
flows check` rather than a call that goes wrong. Whether the environment variables they
name are set is checked by `flows check` and again at run time (`missing_env`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agent.outbound_http import check_url
from tools.json_params import check_schema

ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
TOOL_NAME = r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$"  # OpenAI's and Gemini's function names
_HEADER = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
_OWN_HEADERS = {"content-type", "content-length", "host", "idempotency-key", "user-agent"}


class FlowWebhook(BaseModel):
    """`webhook:` of a flow (or of the whole file: every flow without its own)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    timeout_ms: int = Field(default=1500, ge=50, le=10_000)
    # The environment variable holding the signing secret (never the secret itself).
    secret_env: str = Field(pattern=ENV_NAME)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return check_url(v)


class HttpToolConfig(BaseModel):
    """A tool in a flow's `tools:` that is a POST to the customer's backend."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=TOOL_NAME)
    description: str = Field(min_length=1)
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )
    url: str
    method: Literal["POST", "PUT", "PATCH"] = "POST"
    timeout_s: float = Field(default=5.0, gt=0, le=60)
    filler: bool = True
    filler_phrases: list[str] = Field(default_factory=list)
    idempotent: bool = False
    retries: int = Field(default=2, ge=0, le=5)
    background: bool = False
    scheduling: Literal["INTERRUPT", "WHEN_IDLE", "SILENT"] = "WHEN_IDLE"
    cancel_on_barge_in: bool = False
    # Header name -> environment variable with its value (e.g. Authorization: ORDERS_TOKEN).
    headers_from_env: dict[str, str] = Field(default_factory=dict)
    # The signing secret's variable; unset: the flow's webhook's (flows.py fills it in).
    secret_env: str | None = Field(default=None, pattern=ENV_NAME)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return check_url(v)

    @field_validator("parameters")
    @classmethod
    def _schema(cls, v: dict[str, Any]) -> dict[str, Any]:
        problems = check_schema(v)
        if problems:
            raise ValueError("not a usable JSON Schema: " + "; ".join(problems))
        return v

    @field_validator("headers_from_env")
    @classmethod
    def _headers(cls, v: dict[str, str]) -> dict[str, str]:
        for header, env in v.items():
            if not _HEADER.match(header):
                raise ValueError(f"{header!r} is not an HTTP header name")
            if header.lower() in _OWN_HEADERS or header.lower().startswith("x-phone-agent-"):
                raise ValueError(f"{header!r} is set by phone-agent itself")
            if not re.match(ENV_NAME, env):
                raise ValueError(f"{header}: {env!r} is not an environment variable name")
        return v

    def env_names(self) -> list[tuple[str, str]]:
        """(field, variable) for every environment variable a request needs."""
        named = [(f"headers_from_env.{h}", e) for h, e in self.headers_from_env.items()]
        return ([("secret_env", self.secret_env)] if self.secret_env else []) + named


def missing_env(names: list[tuple[str, str]], env: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """The (field, variable) pairs whose variable is unset or empty."""
    env = os.environ if env is None else env
    return [(field, name) for field, name in names if not env.get(name)]
