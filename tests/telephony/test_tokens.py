"""Stream tokens: HMAC-bound to a call, short-lived, single use."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from telephony.tokens import MemoryUsedTokens, StreamTokens, TokenError, UsedTokens

SECRET = b"0123456789abcdef0123456789abcdef"
CALL = "CA" + "a" * 32


class Clock:
    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def make(clock: Clock | None = None, ttl_s: int = 60) -> StreamTokens:
    return StreamTokens(SECRET, ttl_s=ttl_s, used=MemoryUsedTokens(), clock=clock or Clock())


async def reason(
    tokens: StreamTokens, token: str, call_sid: str = CALL, params: dict[str, str] | None = None
) -> str:
    with pytest.raises(TokenError) as info:
        await tokens.verify(token, call_sid, params)
    return info.value.reason


def test_token_is_short_urlsafe_and_unique() -> None:
    tokens = make()
    a, b = tokens.issue(CALL), tokens.issue(CALL)
    assert a != b
    assert len(a) < 200
    assert set(a) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


async def test_valid_token_verifies_once() -> None:
    tokens = make()
    token = tokens.issue(CALL)
    await tokens.verify(token, CALL)
    assert await reason(tokens, token) == "already used"


async def test_expired() -> None:
    clock = Clock()
    tokens = make(clock, ttl_s=60)
    token = tokens.issue(CALL)
    clock.t += 60
    assert await reason(tokens, token) == "expired"


async def test_wrong_call_does_not_burn_the_token() -> None:
    tokens = make()
    token = tokens.issue(CALL)
    assert await reason(tokens, token, "CA" + "b" * 32) == "wrong call"
    await tokens.verify(token, CALL)


async def test_the_parameters_are_bound_into_the_token() -> None:
    tokens = make()
    params = {"flow": "order-status", "from": "+15551230000", "to": "+15550002000"}
    token = tokens.issue(CALL, params)
    for changed in ({**params, "flow": "vip"}, {**params, "from": "+15559999999"},
                    {k: v for k, v in params.items() if k != "to"}, {**params, "extra": "1"}):
        assert await reason(tokens, token, CALL, changed) == "parameters changed"
    # the token's own parameter and the order of the others do not matter
    await tokens.verify(token, CALL, {"token": token, **dict(reversed(params.items()))})


async def test_bad_signature_from_another_secret_or_tampering() -> None:
    other = StreamTokens(b"x" * 32, used=MemoryUsedTokens(), clock=Clock())
    tokens = make()
    assert await reason(tokens, other.issue(CALL)) == "bad signature"
    good = tokens.issue(CALL)
    version, sid, expiry, nonce, digest, sig = good.split(".")
    longer = ".".join([version, sid, str(int(expiry) + 3600), nonce, digest, sig])
    assert await reason(tokens, longer) == "bad signature"
    flipped = good[:-1] + ("A" if good[-1] != "A" else "B")
    assert await reason(tokens, flipped) == "bad signature"


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        "v1.a.b.c.d",
        "v2.Q0E.1.n.s",
        "v1.Q0E.12x.n.s",
        "v1.!!!.1.n.s",
        "x" * 300,
        "v1.Q0E.²³.n.s",
        "v1.é.1.n.s",
    ],
)
async def test_malformed(token: str) -> None:
    assert await reason(make(), token) == "malformed"


async def test_error_message_names_the_reason() -> None:
    with pytest.raises(TokenError, match="stream token rejected: malformed"):
        await make().verify("nope", CALL)


def test_constructor_and_issue_validation() -> None:
    with pytest.raises(ValueError):
        StreamTokens(b"short")
    with pytest.raises(ValueError):
        StreamTokens(SECRET, ttl_s=0)
    with pytest.raises(ValueError):
        make().issue("")
    with pytest.raises(ValueError):
        make().issue("C" * 65)


async def test_used_store_is_shared_between_issuers() -> None:
    # Two instances with the same secret and a shared store: a token works once overall.
    used = MemoryUsedTokens()
    clock = Clock()
    a = StreamTokens(SECRET, used=used, clock=clock)
    b = StreamTokens(SECRET, used=used, clock=clock)
    token = a.issue(CALL)
    await b.verify(token, CALL)
    assert await reason(a, token) == "already used"


async def test_concurrent_verifies_only_one_wins() -> None:
    tokens = make()
    token = tokens.issue(CALL)
    results = await asyncio.gather(
        *(tokens.verify(token, CALL) for _ in range(20)), return_exceptions=True
    )
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, TokenError) and r.reason == "already used" for r in results if r)


async def test_claim_ttl_outlives_the_token() -> None:
    seen: list[tuple[str, int]] = []

    class Recorder:
        async def claim(self, token_id: str, ttl_s: int) -> bool:
            seen.append((token_id, ttl_s))
            return True

    store: UsedTokens = Recorder()
    clock = Clock()
    tokens = StreamTokens(SECRET, ttl_s=60, used=store, clock=clock)
    token = tokens.issue(CALL)
    clock.t += 10
    await tokens.verify(token, CALL)
    assert seen[0][0] == token.split(".")[3]
    assert seen[0][1] >= 50


async def test_memory_store_expires_and_sweeps() -> None:
    clock = Clock(0.0)
    used = MemoryUsedTokens(clock=clock)
    assert await used.claim("a", 10)
    assert not await used.claim("a", 10)
    clock.t = 11
    assert await used.claim("a", 10)  # expired record: free again
    clock.t = 100
    assert await used.claim("b", 1)
    assert len(used) == 1  # the sweep dropped "a"


@given(st.text(max_size=250))
def test_verify_never_raises_anything_but_token_error(token: str) -> None:
    tokens = make()
    try:
        asyncio.run(tokens.verify(token, CALL))
    except TokenError as exc:
        assert exc.reason in {"malformed", "bad signature"}
