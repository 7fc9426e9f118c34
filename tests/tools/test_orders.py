"""Order numbers as callers say them, and the order lookup tool."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tools.orders import (
    OrdersFileError,
    load_orders,
    lookup_order,
    normalise_order_number,
    orders_path,
)
from tools.registry import ToolContext
from tools.spoken import spoken_code

DIGIT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@pytest.mark.parametrize(
    ("spoken", "digits"),
    [
        ("4567", "4567"),
        ("four five six seven", "4567"),
        ("Four Five Six Seven.", "4567"),
        ("4,567", "4567"),
        ("order #4567", "4567"),
        ("Order number 4567", "4567"),
        ("number 4 5 6 7", "4567"),
        ("4 5 6 7", "4567"),
        ("4-5-6-7", "4567"),
        ("45 67", "4567"),
        ("forty five sixty seven", "4567"),
        ("forty-five sixty-seven", "4567"),
        ("four thousand five hundred and sixty seven", "4567"),
        ("forty five hundred", "4500"),
        ("oh eight one five", "0815"),
        ("o eight one five", "0815"),
        ("zero eight one five", "0815"),
        ("double seven seven one two three", "777123"),
        ("triple seven one two three", "777123"),
        ("it's uh three one, um, four one five", "31415"),
        ("three one four one five please", "31415"),
        ("twenty oh eight three one", "200831"),
        ("nineteen eighty four", "1984"),
        ("ten ten", "1010"),
        ("four eight two zero zero six", "482006"),
        ("482,006", "482006"),
        ("my order is 9 0 9 0", "9090"),
    ],
)
def test_normalise_order_number(spoken: str, digits: str) -> None:
    assert normalise_order_number(spoken) == digits


@pytest.mark.parametrize(
    "spoken", ["", "I don't know", "the blue one", "two", "12", "1234567890123", "order number"]
)
def test_normalise_order_number_rejects(spoken: str) -> None:
    assert normalise_order_number(spoken) is None


@given(st.text(alphabet="0123456789", min_size=3, max_size=12))
def test_any_number_read_digit_by_digit_round_trips(digits: str) -> None:
    assert normalise_order_number(" ".join(DIGIT_WORDS[int(d)] for d in digits)) == digits
    assert normalise_order_number(f"order #{digits}") == digits
    assert normalise_order_number("-".join(digits)) == digits


@given(st.integers(min_value=100, max_value=999_999))
def test_thousands_separators(number: int) -> None:
    assert normalise_order_number(f"{number:,}") == str(number)


@pytest.mark.parametrize(
    ("spoken", "code"),
    [
        ("k seven m four q x", "K7M4QX"),
        ("K7-M4QX", "K7M4QX"),
        ("kilo 7 mike 4 quebec x-ray", "K7M4QX"),
        ("my booking is K7M4QX", "K7M4QX"),
        ("ACDEFG", "ACDEFG"),
    ],
)
def test_spoken_code(spoken: str, code: str) -> None:
    assert spoken_code(spoken) == code


# -- the tool ------------------------------------------------------------------------------------
def test_demo_data_is_valid_and_varied() -> None:
    orders = load_orders()
    assert 10 <= len(orders) <= 15
    assert {o.status for o in orders.values()} == {
        "processing", "shipped", "out_for_delivery", "delivered", "cancelled",
    }  # fmt: skip
    assert all(4 <= len(n) <= 6 for n in orders)


def test_lookup_found_from_spoken_digits() -> None:
    result = lookup_order("four five six seven")
    assert result == {
        "found": True,
        "order_number": "4567",
        "status": "shipped",
        "status_text": "on its way",
        "items": [
            {"name": "Ceramic pour-over coffee set", "quantity": 1},
            {"name": "Paper filters, pack of 100", "quantity": 2},
        ],
        "eta": "2026-11-28",
        "placed_on": "2026-11-20",
        "carrier": "UPS",
        "tracking_number": "1Z999AA10123456784",
    }
    json.dumps(result)


def test_lookup_cancelled_and_delivered() -> None:
    cancelled = lookup_order("5501")
    assert cancelled["status"] == "cancelled" and cancelled["eta"] is None
    assert "refund" in cancelled["cancelled_reason"]
    delivered = lookup_order("one oh four two")
    assert delivered["status"] == "delivered" and delivered["delivered_on"] == "2026-11-14"


def test_lookup_tolerates_leading_zeros() -> None:
    assert lookup_order("815")["order_number"] == "0815"
    assert lookup_order("oh eight one five")["found"]


def test_lookup_not_found_and_garbled() -> None:
    missing = lookup_order("1234")
    assert missing == {
        "found": False,
        "order_number": "1234",
        "message": "No order with the number 1 2 3 4 was found.",
        "say": "I couldn't find an order with the number 1 2 3 4. Could you check the number "
        "and read it to me again?",
    }
    garbled = lookup_order("the blue one")
    assert garbled["found"] is False and "couldn't make out" in garbled["message"]
    assert garbled["say"].endswith("Could you read it to me digit by digit?")


async def test_invoke_with_a_numeric_argument() -> None:
    ctx = ToolContext(call_sid="CA1", caller=None, tool_call_id="t1")
    result = await lookup_order.invoke({"order_number": 31415}, ctx)
    assert result["found"] and result["status"] == "out_for_delivery"


def _write_orders(path: Path, orders: list[dict], mtime: int) -> None:
    path.write_text(json.dumps({"orders": orders}), encoding="utf-8")
    os.utime(path, (mtime, mtime))  # distinct mtimes without waiting for the clock


def test_orders_file_override_and_reload(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "my-orders.json"
    _write_orders(
        path, [{"order_number": "111222", "status": "processing", "items": ["Tea"]}], 1_000
    )
    monkeypatch.setenv("ORDERS_FILE", str(path))
    assert orders_path() == path
    first = lookup_order("one one one two two two")
    assert first["found"] and first["items"] == [{"name": "Tea", "quantity": 1}]
    assert first["eta"] is None
    assert lookup_order("4567")["found"] is False  # the demo data is replaced, not merged
    _write_orders(
        path,
        [{"order_number": "111222", "status": "shipped", "items": ["Tea"], "eta": "2027-01-02"}],
        2_000,
    )
    second = lookup_order("111222")
    assert second["status"] == "shipped" and second["eta"] == "2027-01-02"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "invalid JSON at line 1"),
        ('{"orders": {}}', "expected a list under 'orders'"),
        (
            '[{"order_number": "12a4", "status": "shipped"}]',
            "order #1: order_number '12a4' must be digits",
        ),
        (
            '[{"order_number": "1234", "status": "lost"}]',
            "order #1 (1234): status 'lost' is not one of",
        ),
        (
            '[{"order_number": "1234", "status": "shipped", "eta": "soon"}]',
            "eta 'soon' is not an ISO date",
        ),
        (
            '[{"order_number": "1234", "status": "shipped", "items": [{"quantity": 1}]}]',
            "items[0] needs a 'name'",
        ),
        (
            '[{"order_number": "1234", "status": "shipped", "items": [{"name": "x", "quantity": 0}]}]',
            "items[0].quantity must be a positive integer",
        ),
        (
            '[{"order_number": "1234", "status": "shipped"}, {"order_number": "1234", "status": "shipped"}]',
            "order number 1234 appears twice",
        ),
    ],
)
def test_bad_orders_file_names_the_problem(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "orders.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(OrdersFileError) as info:
        load_orders(path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_missing_orders_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ORDERS_FILE", str(tmp_path / "nope.json"))
    with pytest.raises(OrdersFileError, match="does not exist"):
        lookup_order("4567")
