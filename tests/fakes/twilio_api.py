"""A local stand-in for Twilio's REST API (the parts we call), for tests.

The official `twilio` client is pointed at it (`client.api.base_url`); it records every
request (method, path, query, form, Basic auth) and answers with Twilio's JSON shapes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

AC = "AC" + "a" * 32
CA = "CA" + "c" * 32
BASE = f"/2010-04-01/Accounts/{AC}"


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    form: dict[str, list[str]]
    auth: str


@dataclass
class FakeTwilioApi:
    requests: list[Seen] = field(default_factory=list)
    numbers: list[dict[str, Any]] = field(default_factory=list)

    async def record(self, request: Request) -> Seen:
        body = (await request.body()).decode()
        seen = Seen(
            method=request.method,
            path=request.url.path,
            query=parse_qs(request.url.query),
            form=parse_qs(body, keep_blank_values=True),
            auth=request.headers.get("authorization", ""),
        )
        self.requests.append(seen)
        return seen

    def app(self) -> Starlette:
        async def call(request: Request) -> JSONResponse:
            await self.record(request)
            sid = request.path_params["sid"]
            if sid == "CAmissing":
                return JSONResponse(
                    {
                        "code": 20404,
                        "message": "The requested resource was not found",
                        "status": 404,
                    },
                    status_code=404,
                )
            return JSONResponse({"sid": sid, "account_sid": AC, "status": "completed"})

        async def calls(request: Request) -> JSONResponse:
            await self.record(request)
            return JSONResponse({"sid": CA, "account_sid": AC, "status": "queued"}, status_code=201)

        async def numbers(request: Request) -> JSONResponse:
            seen = await self.record(request)
            wanted = seen.query.get("PhoneNumber", [""])[0]
            found = [n for n in self.numbers if wanted in n["phone_number"]]
            return JSONResponse(
                {
                    "incoming_phone_numbers": found,
                    "page": 0,
                    "page_size": 20,
                    "first_page_uri": f"{BASE}/IncomingPhoneNumbers.json",
                    "next_page_uri": None,
                    "previous_page_uri": None,
                    "uri": f"{BASE}/IncomingPhoneNumbers.json",
                    "start": 0,
                    "end": len(found),
                }
            )

        async def number(request: Request) -> JSONResponse:
            await self.record(request)
            return JSONResponse({"sid": request.path_params["sid"], "account_sid": AC})

        return Starlette(
            routes=[
                Route(f"{BASE}/Calls/{{sid}}.json", call, methods=["POST"]),
                Route(f"{BASE}/Calls.json", calls, methods=["POST"]),
                Route(f"{BASE}/IncomingPhoneNumbers.json", numbers, methods=["GET"]),
                Route(f"{BASE}/IncomingPhoneNumbers/{{sid}}.json", number, methods=["POST"]),
            ]
        )
