"""Twilio voice webhooks: `POST /twilio/voice` -> TwiML, `POST /twilio/status`.

Every request must carry a valid `X-Twilio-Signature` computed over the exact URL
Twilio requested. Behind a TLS terminator the app sees `http://internal:8000/...`, so
the URL is rebuilt from the configured public origin (or, only when explicitly
trusted, from `X-Forwarded-Proto`/`X-Forwarded-Host`), keeping the request's path and
raw query string.

Routes come from a factory so the app is assembled in one visible place and nothing
lives in module globals.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Connect, Stream, VoiceResponse

from telephony.numbers import mask_number
from telephony.tokens import TOKEN_PARAMETER, StreamTokens
from telephony.twilio_form import MAX_FORM_BYTES, FormTooBig, TwilioForm

logger = logging.getLogger(__name__)

SORRY = "Sorry, this number cannot take your call right now. Goodbye."



@dataclass(frozen=True)
class FlowChoice:
    """A flow, and more stream `<Parameter>`s the stream token binds like the others
    (e.g. the id of what the service worked out for this call while answering)."""

    flow: str
    parameters: Mapping[str, str] = field(default_factory=dict)


_BOUND = ("flow", "from", "to", TOKEN_PARAMETER)  # the webhook's own stream parameters
Chosen = str | FlowChoice | None
FlowChooser = Callable[[Mapping[str, str]], Chosen | Awaitable[Chosen]]
StatusCallback = Callable[[dict[str, str]], None | Awaitable[None]]


def _never_busy() -> bool:
    return False


@dataclass(frozen=True)
class WebhookConfig:
    public_url: str | None  # origin Twilio calls, e.g. "https://agent.example.com"
    auth_token: str
    tokens: StreamTokens
    trust_forwarded_headers: bool = False
    busy: Callable[[], bool] = _never_busy  # True -> <Reject reason="busy"/> (drain / cap)
    media_path: str = "/twilio/media"
    # Local experiments without a Twilio account only: accept requests without checking
    # their signature (each one logs a warning). Never behind a public address.
    unsigned: bool = False
    validator: RequestValidator = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.auth_token and not self.unsigned:
            # An empty key is no key: anyone can compute a signature with it.
            raise ValueError("auth_token is empty: every webhook signed with the empty key would pass")
        if self.public_url is not None:
            parts = urlsplit(self.public_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(
                    f"public_url must be http(s)://host[:port], got {self.public_url!r}"
                )
            if parts.path not in ("", "/") or parts.query:
                # A path prefix would need the same prefix on every route; refuse rather
                # than silently failing every signature check.
                raise ValueError(
                    f"public_url must be an origin without a path, got {self.public_url!r}"
                )
        object.__setattr__(self, "validator", RequestValidator(self.auth_token))


def voice_routes(
    config: WebhookConfig,
    choose_flow: FlowChooser,
    on_status: StatusCallback | None = None,
) -> list[Route]:
    """`POST /twilio/voice` and `POST /twilio/status`, bound to `config`.

    `choose_flow` gets the webhook form fields plus the URL's query parameters (form
    wins on a name clash, so `?flow=sales` arrives as "flow") and returns a flow name
    (or a `FlowChoice` with more stream parameters), or None to play an apology and hang
    up. It and `on_status` may be sync or async.
    """

    rejections = _RejectionLog()

    async def voice(request: Request) -> Response:
        form = await _verified_form(request, config, rejections)
        if form is None:
            return _forbidden()
        call_sid = form.get("CallSid", "")
        if config.busy():
            logger.info("voice webhook: busy, rejecting call %s", call_sid)
            reject = VoiceResponse()
            reject.reject(reason="busy")
            return _twiml(reject)
        params: dict[str, str] = dict(request.query_params)
        params.update(form.items())
        answer_to = await stream_answer(config, choose_flow, params)
        if answer_to is None:
            logger.info(
                "voice webhook: no flow for call %s to %s", call_sid, mask_number(form.get("To"))
            )
            sorry = VoiceResponse()
            sorry.say(SORRY)
            sorry.hangup()
            return _twiml(sorry)

        stream = Stream(url=media_url(request, config))
        for name, value in answer_to.parameters.items():
            stream.parameter(name=name, value=value)
        connect = Connect()
        connect.append(stream)
        answer = VoiceResponse()
        answer.append(connect)
        logger.info(
            "voice webhook: call %s from %s to %s -> flow %r",
            call_sid,
            mask_number(form.get("From")),
            mask_number(form.get("To")),
            answer_to.flow,
        )
        return _twiml(answer)

    async def status(request: Request) -> Response:
        form = await _verified_form(request, config, rejections)
        if form is None:
            return _forbidden()
        if on_status is not None:
            fields = dict(form.items())
            try:
                await _maybe_await(on_status(fields))
            except Exception:
                logger.exception(
                    "status webhook: handler failed for call %s", fields.get("CallSid")
                )
                return PlainTextResponse("status handler failed", status_code=500)
        return Response(status_code=204)

    return [
        Route("/twilio/voice", voice, methods=["POST"], name="twilio_voice"),
        Route("/twilio/status", status, methods=["POST"], name="twilio_status"),
    ]


@dataclass(frozen=True)
class StreamAnswer:
    """What the voice webhook gives Twilio for a call it takes: the flow, and the stream's
    `<Parameter>`s in order (the stream token last; it binds all the others)."""

    flow: str
    parameters: dict[str, str]


async def stream_answer(
    config: WebhookConfig, choose_flow: FlowChooser, params: Mapping[str, str]
) -> StreamAnswer | None:
    """The flow and stream parameters for a call, from the webhook's fields (`CallSid`,
    `From`, `To`, and `flow` from the query): None when no flow takes it (or choosing one
    failed). The one place they are built, for Twilio's webhook and for any other client
    of the media stream (the console's softphone), so every stream is checked alike."""
    call_sid = params.get("CallSid", "")
    try:
        chosen = await _maybe_await(choose_flow(params))
        choice = FlowChoice(chosen) if isinstance(chosen, str) else chosen
        if choice is None:
            return None
        clash = sorted(set(choice.parameters) & set(_BOUND))
        if clash:
            raise ValueError(f"FlowChoice parameters may not set {clash}")
        # What the stream will carry, all bound into its token: a stream cannot
        # name another flow or caller than this webhook chose.
        stream_params = {
            "flow": choice.flow, "from": params.get("From", ""), "to": params.get("To", ""),
            **choice.parameters,
        }  # fmt: skip
        token = config.tokens.issue(call_sid, stream_params)
    except Exception:
        logger.exception("voice webhook: choosing a flow failed for call %s", call_sid)
        return None
    return StreamAnswer(choice.flow, {**stream_params, TOKEN_PARAMETER: token})


# ---------------------------------------------------------------- helpers


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def _twiml(response: VoiceResponse) -> Response:
    return Response(str(response), media_type="text/xml")


def _forbidden() -> Response:
    return PlainTextResponse("Forbidden: invalid Twilio signature", status_code=403)


def _public_origin(request: Request, config: WebhookConfig) -> tuple[str, str]:
    """(scheme, host[:port]) of the URL Twilio used to reach us."""
    if config.public_url is not None:
        parts = urlsplit(config.public_url)
        return parts.scheme, parts.netloc
    scheme, host = request.url.scheme, request.headers.get("host", request.url.netloc)
    if config.trust_forwarded_headers:
        # A proxy chain appends; the left-most value is what the client (Twilio) used.
        proto = request.headers.get("x-forwarded-proto")
        fwd_host = request.headers.get("x-forwarded-host")
        if proto:
            scheme = proto.split(",")[0].strip()
        if fwd_host:
            host = fwd_host.split(",")[0].strip()
    return scheme, host


def _signed_url(request: Request, config: WebhookConfig) -> str:
    scheme, host = _public_origin(request, config)
    # The raw query string, byte for byte: re-encoding it would change the signature.
    query = request.scope.get("query_string", b"").decode("latin-1")
    url = f"{scheme}://{host}{request.url.path}"
    return f"{url}?{query}" if query else url


def media_url(request: Request, config: WebhookConfig) -> str:
    """The `wss://` (or local `ws://`) URL of the media stream, on the public origin."""
    scheme, host = _public_origin(request, config)
    # Twilio only dials wss://; ws:// is kept for local runs over plain http.
    return f"{'wss' if scheme == 'https' else 'ws'}://{host}{config.media_path}"


async def _read_form(request: Request) -> TwilioForm:
    """The urlencoded body; FormTooBig (before reading it all) if it cannot be Twilio's."""
    declared = request.headers.get("content-length")
    if declared is not None and (
        not (declared.isascii() and declared.isdigit()) or int(declared) > MAX_FORM_BYTES
    ):
        raise FormTooBig(f"declared length {declared[:20]!r}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormTooBig(f"body over {MAX_FORM_BYTES} bytes")
    return TwilioForm.parse(bytes(body))


class _RejectionLog:
    """Warn about refused webhooks, at most `per_second` lines a second: a flood of
    forged requests must not become a flood of log lines (the rest are counted)."""

    def __init__(self, per_second: int = 5, clock: Callable[[], float] = time.monotonic) -> None:
        self._per_second = per_second
        self._clock = clock
        self._window = -1
        self._lines = 0
        self._held_back = 0

    def warn(self, message: str, *args: object) -> None:
        window = int(self._clock())
        if window != self._window:
            if self._held_back:
                logger.warning("rejected %d more unsigned webhooks (not logged one by one)",
                               self._held_back)
            self._window, self._lines, self._held_back = window, 0, 0
        if self._lines < self._per_second:
            self._lines += 1
            logger.warning(message, *args)
        else:
            self._held_back += 1


async def _verified_form(
    request: Request, config: WebhookConfig, rejections: _RejectionLog
) -> TwilioForm | None:
    """The form if the request is signed by Twilio, else None (after a warning)."""
    form: TwilioForm | None = None
    signature = request.headers.get("x-twilio-signature")
    url = _signed_url(request, config)
    problem = None
    try:
        form = await _read_form(request)
    except FormTooBig as exc:
        problem = f"not a Twilio form ({exc})"
    if form is None:
        pass  # `problem` says why
    elif config.unsigned:
        logger.warning(
            "UNSIGNED webhook accepted without a signature check (local experiments only): "
            "%s %s call=%s", request.method, request.url.path, form.get("CallSid", "-"),
        )
        return form
    elif not signature:
        problem = "missing X-Twilio-Signature"
    elif not config.validator.validate(url, form, signature):
        problem = "invalid X-Twilio-Signature"
    if problem is None:
        return form
    # Log enough to debug a proxy/URL mismatch; never the token, query or full numbers.
    rejections.warn(
        "rejected unsigned webhook: %s for %s %s (checked against %s) call=%s from=%s",
        problem,
        request.method,
        request.url.path,
        url.split("?", 1)[0],
        form.get("CallSid", "-") if form else "-",
        mask_number(form.get("From") if form else None),
    )
    return None
