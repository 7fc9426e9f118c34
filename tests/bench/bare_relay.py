"""A bare Twilio <-> OpenAI Realtime relay: the yardstick for the bridge's CPU per call.

Written for `bench_vs_relay.py` from a description of what Twilio's speech-assistant
sample does, and from the protocol references; it is a reference for that comparison,
not the sample's code, and not something to deploy. It does only what that sample
does, with the GA event names the fake OpenAI server speaks:

- Twilio `media` -> json.loads -> `input_audio_buffer.append` with the same base64
  payload (json.dumps),
- OpenAI `response.output_audio.delta` -> json.loads -> Twilio `media` with the
  delta's base64, then a `mark` (json.dumps each),
- `input_audio_buffer.speech_started` while marks are outstanding -> Twilio `clear` and
  `conversation.item.truncate` at the caller's media timestamp minus the one at which
  the reply's first delta went out (wall-ish time, as the sample does),
- Twilio `mark` echoes pop a FIFO; `stop` or a disconnect ends the OpenAI session.

No pacing (every delta goes to Twilio at once), no call records, tools, metrics or
logs. A greeting (`response.create`) is asked for at start so that the bench's callers
hear one, as they do from our server. Both legs run without per-message deflate, as
our server does, so the comparison is of the relaying, not of zlib.

    python -m tests.bench.bare_relay --realtime-url ws://... --api-key K

prints one JSON line {"ready": true, "url": ...} and serves until stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import sys
from collections.abc import Iterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

GREETING = "Hello, thanks for calling Riverside Clinic. How can I help you today?"


def session_update() -> dict[str, Any]:
    return {
        "type": "session.update",
        "session": {
            "type": "realtime",
            "instructions": "You answer the phone.",
            "output_modalities": ["audio"],
            "audio": {
                "input": {
                    "format": {"type": "audio/pcmu"},
                    "turn_detection": {"type": "server_vad"},
                },
                "output": {"format": {"type": "audio/pcmu"}, "voice": "marin"},
            },
        },
    }


class Relay:
    """One call: the Twilio socket and the OpenAI socket, two loops."""

    def __init__(self, twilio: WebSocket, openai: ClientConnection) -> None:
        self.twilio = twilio
        self.openai = openai
        self.stream_sid: str | None = None
        self.latest_media_ts = 0
        self.reply_start_ts: int | None = None
        self.last_item: str | None = None
        self.marks: list[str] = []

    async def from_twilio(self) -> None:
        try:
            while True:
                data = json.loads(await self.twilio.receive_text())
                event = data["event"]
                if event == "media":
                    self.latest_media_ts = int(data["media"]["timestamp"])
                    await self.openai.send(
                        json.dumps(
                            {"type": "input_audio_buffer.append", "audio": data["media"]["payload"]}
                        )
                    )
                elif event == "start":
                    self.stream_sid = data["start"]["streamSid"]
                    self.reply_start_ts = None
                    self.latest_media_ts = 0
                elif event == "mark":
                    if self.marks:
                        self.marks.pop(0)
                elif event == "stop":
                    break
        except (WebSocketDisconnect, RuntimeError):
            pass
        await self.openai.close()

    async def to_twilio(self) -> None:
        with contextlib.suppress(ConnectionClosed, WebSocketDisconnect, RuntimeError):
            async for raw in self.openai:
                ev = json.loads(raw)
                kind = ev.get("type")
                if kind == "response.output_audio.delta" and "delta" in ev:
                    await self.twilio.send_text(
                        json.dumps(
                            {
                                "event": "media",
                                "streamSid": self.stream_sid,
                                "media": {"payload": ev["delta"]},
                            }
                        )
                    )
                    if self.reply_start_ts is None:
                        self.reply_start_ts = self.latest_media_ts
                    if ev.get("item_id"):
                        self.last_item = ev["item_id"]
                    await self.send_mark()
                elif kind == "input_audio_buffer.speech_started":
                    await self.interrupt()

    async def send_mark(self) -> None:
        if self.stream_sid is None:
            return
        await self.twilio.send_text(
            json.dumps(
                {"event": "mark", "streamSid": self.stream_sid, "mark": {"name": "responsePart"}}
            )
        )
        self.marks.append("responsePart")

    async def interrupt(self) -> None:
        if not self.marks or self.reply_start_ts is None:
            return
        elapsed = self.latest_media_ts - self.reply_start_ts
        if self.last_item:
            await self.openai.send(
                json.dumps(
                    {
                        "type": "conversation.item.truncate",
                        "item_id": self.last_item,
                        "content_index": 0,
                        "audio_end_ms": elapsed,
                    }
                )
            )
        await self.twilio.send_text(json.dumps({"event": "clear", "streamSid": self.stream_sid}))
        self.marks.clear()
        self.last_item = None
        self.reply_start_ts = None


def create_app(realtime_url: str, api_key: str, deflate: bool = False) -> Starlette:
    async def media(websocket: WebSocket) -> None:
        await websocket.accept()
        async with connect(
            f"{realtime_url}?model=gpt-realtime",
            additional_headers={"Authorization": f"Bearer {api_key}"},
            compression="deflate" if deflate else None,
        ) as openai:
            await openai.send(json.dumps(session_update()))
            await openai.send(
                json.dumps(
                    {
                        "type": "response.create",
                        "response": {"instructions": f'Say exactly: "{GREETING}"'},
                    }
                )
            )
            relay = Relay(websocket, openai)
            await asyncio.gather(relay.from_twilio(), relay.to_twilio())
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.close()

    return Starlette(routes=[WebSocketRoute("/media", media)])


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the parent ends this process by closing stdin


async def serve(realtime_url: str, api_key: str, deflate: bool = False) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(realtime_url, api_key, deflate),
        log_level="warning",
        ws_per_message_deflate=False,
        log_config=None,
    )
    server = _Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if serving.done():
            await serving
            raise RuntimeError("uvicorn exited before it started")
        await asyncio.sleep(0.05)
    sys.stdout.write(
        json.dumps({"ready": True, "url": f"http://127.0.0.1:{port}", "auth_token": ""}) + "\n"
    )
    sys.stdout.flush()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while await reader.readline():
        pass  # stdin closed: the run is over
    server.should_exit = True
    await serving


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--realtime-url", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument(
        "--deflate",
        action="store_true",
        help="offer per-message deflate to the model's server "
        "(the websockets client's default; the fake accepts it)",
    )
    args = parser.parse_args()
    from agent.service.runtime import event_loop_runner

    event_loop_runner()(serve(args.realtime_url, args.api_key, args.deflate))


if __name__ == "__main__":
    main()
