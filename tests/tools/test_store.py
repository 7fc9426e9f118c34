"""The Store contract, run against both backends (real SQLite file, real Redis)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import pytest

from tools.store import Booking, NotFound, SlotTaken, Store

DAY = dt.date(2031, 3, 4)
OTHER_DAY = dt.date(2031, 3, 5)
PHONE = "+15550100"


async def test_book_returns_an_active_booking(store: Store) -> None:
    b = await store.book(DAY, "10:00", "Ada Lovelace", PHONE, "call-1:t1")
    assert isinstance(b, Booking)
    assert (b.day, b.time, b.name, b.phone, b.status) == (
        DAY,
        "10:00",
        "Ada Lovelace",
        PHONE,
        "active",
    )
    assert b.active and len(b.booking_id) == 6
    assert await store.get(b.booking_id) == b
    assert await store.booked_times(DAY) == ["10:00"]
    json.dumps(b.to_dict())  # serialisable for call records


async def test_same_idempotency_key_returns_the_same_booking(store: Store) -> None:
    first = await store.book(DAY, "10:00", "Ada", PHONE, "call-1:t1")
    again = await store.book(DAY, "10:00", "Ada", PHONE, "call-1:t1")
    # A replay with different arguments still returns the original: the key decides.
    other_args = await store.book(DAY, "11:00", "Bob", None, "call-1:t1")
    assert again == first and other_args == first
    assert await store.booked_times(DAY) == ["10:00"]
    assert await store.find_by_phone(PHONE) == [first]
    assert await store.get_by_idem("call-1:t1") == first
    assert await store.get_by_idem("call-1:never") is None


async def test_concurrent_replays_of_one_key_make_one_booking(store: Store) -> None:
    results = await asyncio.gather(
        *(store.book(DAY, "10:00", "Ada", PHONE, "call-1:t1") for _ in range(20))
    )
    assert len({b.booking_id for b in results}) == 1
    assert await store.booked_times(DAY) == ["10:00"]


async def test_taken_slot_raises_slot_taken(store: Store) -> None:
    await store.book(DAY, "10:00", "Ada", PHONE, "call-1:t1")
    with pytest.raises(SlotTaken) as info:
        await store.book(DAY, "10:00", "Bob", "+15550199", "call-2:t1")
    assert (info.value.day, info.value.time) == (DAY, "10:00")
    assert "10:00" in str(info.value) and "2031-03-04" in str(info.value)
    # Same time on another day is a different slot.
    await store.book(OTHER_DAY, "10:00", "Bob", "+15550199", "call-2:t2")
    assert await store.booked_times(OTHER_DAY) == ["10:00"]


async def test_concurrent_bookings_of_one_slot_in_one_process(store: Store) -> None:
    async def attempt(i: int) -> Booking | None:
        try:
            return await store.book(DAY, "10:00", f"Caller {i}", None, f"call-{i}:t1")
        except SlotTaken:
            return None

    results = await asyncio.gather(*(attempt(i) for i in range(30)))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert await store.booked_times(DAY) == ["10:00"]


async def test_booked_times_are_sorted_and_per_day(store: Store) -> None:
    for i, t in enumerate(["15:30", "09:00", "12:00"]):
        await store.book(DAY, t, "Ada", PHONE, f"k{i}")
    assert await store.booked_times(DAY) == ["09:00", "12:00", "15:30"]
    assert await store.booked_times(OTHER_DAY) == []


async def test_cancel_frees_the_slot(store: Store) -> None:
    b = await store.book(DAY, "10:00", "Ada", PHONE, "k1")
    cancelled = await store.cancel(b.booking_id)
    assert cancelled.status == "cancelled" and cancelled.booking_id == b.booking_id
    assert (await store.get(b.booking_id)).status == "cancelled"
    assert await store.booked_times(DAY) == []
    assert await store.find_by_phone(PHONE) == []
    rebooked = await store.book(DAY, "10:00", "Bob", None, "k2")
    assert rebooked.booking_id != b.booking_id
    # Cancelling a cancelled booking is a harmless no-op; it must not free Bob's slot.
    assert (await store.cancel(b.booking_id)).status == "cancelled"
    assert await store.booked_times(DAY) == ["10:00"]


async def test_cancel_with_idempotency_key_replays(store: Store) -> None:
    b = await store.book(DAY, "10:00", "Ada", PHONE, "k1")
    first = await store.cancel(b.booking_id, "call-9:t1")
    again = await store.cancel(b.booking_id, "call-9:t1")
    assert first.booking_id == again.booking_id and again.status == "cancelled"
    assert (await store.get_by_idem("call-9:t1")).booking_id == b.booking_id


async def test_cancel_unknown_raises_not_found(store: Store) -> None:
    with pytest.raises(NotFound) as info:
        await store.cancel("NOPE42")
    assert info.value.booking_id == "NOPE42" and "NOPE42" in str(info.value)


async def test_get_unknown_raises_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.get("NOPE42")


async def test_reschedule_moves_the_booking(store: Store) -> None:
    b = await store.book(DAY, "10:00", "Ada", PHONE, "k1")
    moved = await store.reschedule(b.booking_id, OTHER_DAY, "14:30", "k2")
    assert (moved.booking_id, moved.day, moved.time, moved.status) == (
        b.booking_id, OTHER_DAY, "14:30", "active",
    )  # fmt: skip
    assert await store.booked_times(DAY) == []
    assert await store.booked_times(OTHER_DAY) == ["14:30"]
    assert await store.get(b.booking_id) == moved
    # The freed slot is bookable again.
    await store.book(DAY, "10:00", "Bob", None, "k3")


async def test_reschedule_into_a_taken_slot_keeps_the_old_one(store: Store) -> None:
    mine = await store.book(DAY, "10:00", "Ada", PHONE, "k1")
    await store.book(DAY, "11:00", "Bob", None, "k2")
    with pytest.raises(SlotTaken) as info:
        await store.reschedule(mine.booking_id, DAY, "11:00", "k3")
    assert info.value.time == "11:00"
    assert await store.get(mine.booking_id) == mine
    assert await store.booked_times(DAY) == ["10:00", "11:00"]
    # A failed attempt does not burn the key: the caller may retry it for a free slot.
    assert await store.get_by_idem("k3") is None


async def test_reschedule_replay_and_same_slot(store: Store) -> None:
    b = await store.book(DAY, "10:00", "Ada", PHONE, "k1")
    moved = await store.reschedule(b.booking_id, DAY, "11:00", "k2")
    # Replaying the key must not move it again, even with other arguments.
    assert await store.reschedule(b.booking_id, DAY, "12:00", "k2") == moved
    assert await store.booked_times(DAY) == ["11:00"]
    same = await store.reschedule(b.booking_id, DAY, "11:00", "k3")
    assert (same.day, same.time) == (DAY, "11:00")
    assert await store.booked_times(DAY) == ["11:00"]


async def test_reschedule_cancelled_or_unknown_raises_not_found(store: Store) -> None:
    b = await store.book(DAY, "10:00", "Ada", PHONE, "k1")
    await store.cancel(b.booking_id)
    with pytest.raises(NotFound) as info:
        await store.reschedule(b.booking_id, DAY, "11:00", "k2")
    assert "cancelled" in str(info.value)
    with pytest.raises(NotFound):
        await store.reschedule("NOPE42", DAY, "11:00", "k3")
    assert await store.booked_times(DAY) == []


async def test_find_by_phone_lists_active_bookings_soonest_first(store: Store) -> None:
    late = await store.book(OTHER_DAY, "09:00", "Ada", PHONE, "k1")
    early = await store.book(DAY, "15:00", "Ada", PHONE, "k2")
    gone = await store.book(DAY, "16:00", "Ada", PHONE, "k3")
    await store.book(DAY, "09:00", "Bob", "+15550199", "k4")
    await store.book(DAY, "09:30", "Anon", None, "k5")
    await store.cancel(gone.booking_id)
    assert [b.booking_id for b in await store.find_by_phone(PHONE)] == [
        early.booking_id,
        late.booking_id,
    ]
    assert await store.find_by_phone("+10000000000") == []


@pytest.mark.parametrize(
    ("day", "time", "error"),
    [
        (DAY, "9:00", ValueError),  # would be a second key for the 09:00 slot
        (DAY, "24:00", ValueError),
        (DAY, "10am", ValueError),
        (dt.datetime(2031, 3, 4, 10), "10:00", TypeError),
        ("2031-03-04", "10:00", TypeError),
    ],
)
async def test_book_rejects_unnormalised_slots(store: Store, day, time, error) -> None:
    with pytest.raises(error):
        await store.book(day, time, "Ada", PHONE, "k1")


async def test_writes_need_an_idempotency_key(store: Store) -> None:
    with pytest.raises(ValueError, match="idem_key"):
        await store.book(DAY, "10:00", "Ada", PHONE, "")
    b = await store.book(DAY, "10:00", "Ada", PHONE, "k1")
    with pytest.raises(ValueError, match="idem_key"):
        await store.reschedule(b.booking_id, DAY, "11:00", "")


# -- records ---------------------------------------------------------------------------------
async def test_records_put_get_overwrite(store: Store) -> None:
    assert await store.get_record("call", "CA1") is None
    await store.put_record("call", "CA1", {"sid": "CA1", "turns": [1, 2], "ok": True})
    assert await store.get_record("call", "CA1") == {"sid": "CA1", "turns": [1, 2], "ok": True}
    await store.put_record("call", "CA1", {"sid": "CA1", "v": 2})
    assert await store.get_record("call", "CA1") == {"sid": "CA1", "v": 2}
    assert await store.get_record("other-kind", "CA1") is None


async def test_list_records_newest_first_with_limit(store: Store) -> None:
    for i in range(5):
        await store.put_record("call", f"CA{i}", {"i": i})
    await store.put_record("token", "x", {"i": "token"})
    assert [r["i"] for r in await store.list_records("call")] == [4, 3, 2, 1, 0]
    assert [r["i"] for r in await store.list_records("call", limit=2)] == [4, 3]
    assert await store.list_records("call", limit=0) == []
    # Rewriting a record makes it the newest.
    await store.put_record("call", "CA1", {"i": 1})
    assert [r["i"] for r in await store.list_records("call", limit=3)] == [1, 4, 3]
    assert await store.list_records("nothing-here") == []


async def test_records_must_be_json(store: Store) -> None:
    with pytest.raises(TypeError):
        await store.put_record("call", "CA1", {"when": dt.date(2031, 1, 1)})
    with pytest.raises(ValueError, match="ttl_s"):
        await store.put_record("call", "CA1", {}, ttl_s=0)


async def test_take_record_is_single_use(store: Store) -> None:
    await store.put_record("stream-token", "tok1", {"call_sid": "CA1"}, ttl_s=60)
    takers = await asyncio.gather(*(store.take_record("stream-token", "tok1") for _ in range(10)))
    assert [t for t in takers if t is not None] == [{"call_sid": "CA1"}]
    assert await store.get_record("stream-token", "tok1") is None
    assert await store.list_records("stream-token") == []
    assert await store.take_record("stream-token", "never") is None


async def test_delete_record(store: Store) -> None:
    await store.put_record("call", "CA1", {"v": 1})
    await store.put_record("call", "CA2", {"v": 2})
    assert await store.delete_record("call", "CA1") is True
    assert await store.delete_record("call", "CA1") is False
    assert await store.list_records("call") == [{"v": 2}]


# -- blobs -----------------------------------------------------------------------------------
async def test_blobs_round_trip_every_byte(store: Store) -> None:
    clip = bytes(range(256)) * 40  # μ-law audio is arbitrary bytes
    assert await store.get_blob("filler:openai:marin:abc") is None
    await store.put_blob("filler:openai:marin:abc", clip)
    assert await store.get_blob("filler:openai:marin:abc") == clip
    await store.put_blob("filler:openai:marin:abc", b"")
    assert await store.get_blob("filler:openai:marin:abc") == b""
    with pytest.raises(TypeError):
        await store.put_blob("k", "not bytes")  # type: ignore[arg-type]
