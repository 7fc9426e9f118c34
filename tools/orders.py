"""Order status lookup by (spoken) order number.

Orders come from a JSON file: the shipped demo data (`tools/data/orders.json`) unless
ORDERS_FILE points at the user's own. The file is re-read when it changes on disk, so
editing it does not need a restart. Shape (a bare list of orders also works):

    {"orders": [{"order_number": "4567", "status": "shipped",
                 "items": [{"name": "Mug", "quantity": 2}], "eta": "2026-11-28",
                 "carrier": "UPS", "tracking_number": "1Z...", "placed_on": "2026-11-20",
                 "delivered_on": null, "cancelled_reason": null}]}
"""

from __future__ import annotations

import datetime as dt
import importlib.resources
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from tools.registry import tool
from tools.spoken import spoken_digits

__all__ = [
    "Order",
    "OrderItem",
    "OrdersFileError",
    "load_orders",
    "lookup_order",
    "normalise_order_number",
    "orders_path",
]

OrderStatus = Literal["processing", "shipped", "out_for_delivery", "delivered", "cancelled"]
_STATUSES: tuple[str, ...] = get_args(OrderStatus)
_STATUS_TEXT = {
    "processing": "being prepared and has not shipped yet",
    "shipped": "on its way",
    "out_for_delivery": "out for delivery today",
    "delivered": "delivered",
    "cancelled": "cancelled",
}
# Shorter is a slip of the tongue ("two"), longer is a phone or card number.
MIN_DIGITS, MAX_DIGITS = 3, 12


class OrdersFileError(ValueError):
    """The orders file is malformed; the message names the file, the order and the field."""


@dataclass(frozen=True)
class OrderItem:
    name: str
    quantity: int = 1


@dataclass(frozen=True)
class Order:
    order_number: str
    status: OrderStatus
    items: tuple[OrderItem, ...]
    placed_on: dt.date | None = None
    eta: dt.date | None = None
    delivered_on: dt.date | None = None
    carrier: str | None = None
    tracking_number: str | None = None
    cancelled_reason: str | None = None


def normalise_order_number(text: str) -> str | None:
    """What the caller said -> the order number's digits, or None if there is no number.

    "four five six seven", "4,567", "order #4567", "number 4 5 6 7", "forty five sixty
    seven", "oh eight one five" -> "4567" / "0815". Leading zeros are kept.
    """
    digits = spoken_digits(str(text))
    if digits is None or not MIN_DIGITS <= len(digits) <= MAX_DIGITS:
        return None
    return digits


def orders_path() -> Path:
    """ORDERS_FILE if set, else the demo data shipped inside the package."""
    override = os.environ.get("ORDERS_FILE")
    if override:
        return Path(override).expanduser()
    return Path(str(importlib.resources.files("tools") / "data" / "orders.json"))


def _date(raw: Any, where: str, field: str) -> dt.date | None:
    if raw is None or raw == "":
        return None
    try:
        return dt.date.fromisoformat(str(raw))
    except ValueError:
        raise OrdersFileError(f"{where}: {field} {raw!r} is not an ISO date (YYYY-MM-DD)") from None


def _parse_order(raw: Any, where: str) -> Order:
    if not isinstance(raw, dict):
        raise OrdersFileError(f"{where}: expected an object, got {type(raw).__name__}")
    number = str(raw.get("order_number", "")).strip()
    if not number.isdigit():
        raise OrdersFileError(f"{where}: order_number {number!r} must be digits")
    where = f"{where} ({number})"
    status = raw.get("status")
    if status not in _STATUSES:
        raise OrdersFileError(f"{where}: status {status!r} is not one of {', '.join(_STATUSES)}")
    items_raw = raw.get("items", [])
    if not isinstance(items_raw, list):
        raise OrdersFileError(f"{where}: items must be a list")
    items = []
    for j, item in enumerate(items_raw):
        if isinstance(item, str):
            items.append(OrderItem(item))
        elif isinstance(item, dict) and isinstance(item.get("name"), str):
            quantity = item.get("quantity", 1)
            if not isinstance(quantity, int) or quantity < 1:
                raise OrdersFileError(f"{where}: items[{j}].quantity must be a positive integer")
            items.append(OrderItem(item["name"], quantity))
        else:
            raise OrdersFileError(f"{where}: items[{j}] needs a 'name'")
    return Order(
        order_number=number,
        status=status,
        items=tuple(items),
        placed_on=_date(raw.get("placed_on"), where, "placed_on"),
        eta=_date(raw.get("eta"), where, "eta"),
        delivered_on=_date(raw.get("delivered_on"), where, "delivered_on"),
        carrier=raw.get("carrier") or None,
        tracking_number=raw.get("tracking_number") or None,
        cancelled_reason=raw.get("cancelled_reason") or None,
    )


def load_orders(path: Path | None = None) -> dict[str, Order]:
    """Parse and validate an orders file -> {order_number: Order}."""
    path = path or orders_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OrdersFileError(f"orders file {path} does not exist (check ORDERS_FILE)") from None
    except json.JSONDecodeError as exc:
        raise OrdersFileError(
            f"orders file {path}: invalid JSON at line {exc.lineno}: {exc.msg}"
        ) from None
    raw_orders = data.get("orders") if isinstance(data, dict) else data
    if not isinstance(raw_orders, list):
        raise OrdersFileError(f"orders file {path}: expected a list under 'orders'")
    orders: dict[str, Order] = {}
    for i, raw in enumerate(raw_orders):
        order = _parse_order(raw, f"orders file {path}: order #{i + 1}")
        if order.order_number in orders:
            raise OrdersFileError(
                f"orders file {path}: order number {order.order_number} appears twice"
            )
        orders[order.order_number] = order
    return orders


# Static data cache keyed by file identity, not per-call state; the lock keeps two
# concurrent lookups from parsing the same file twice.
_cache: dict[Path, tuple[tuple[int, int], dict[str, Order]]] = {}
_cache_lock = threading.Lock()


def _orders() -> dict[str, Order]:
    path = orders_path()
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise OrdersFileError(f"orders file {path} does not exist (check ORDERS_FILE)") from None
    stamp = (stat.st_mtime_ns, stat.st_size)
    with _cache_lock:
        cached = _cache.get(path)
        if cached is None or cached[0] != stamp:
            cached = (stamp, load_orders(path))
            _cache[path] = cached
        return cached[1]


def _find(orders: dict[str, Order], digits: str) -> Order | None:
    if digits in orders:
        return orders[digits]
    # "oh eight one five" vs "815": leading zeros are the part most often dropped or added.
    bare = digits.lstrip("0")
    return next((o for n, o in orders.items() if n.lstrip("0") == bare), None)


def _spaced(digits: str) -> str:
    return " ".join(digits)  # so text-to-speech reads 4567 as digits, not "four thousand..."


@tool(
    timeout_s=5.0,
    idempotent=True,
    cancel_on_barge_in=True,  # a read: nothing is lost if the caller changes their mind
    filler_phrases=("Let me look that order up.", "One moment while I find your order."),
)
def lookup_order(order_number: str) -> dict[str, Any]:
    """Look up an order's status, items and expected delivery date by its order number.

    Args:
        order_number: The order number as the caller said it, e.g. "4567" or "four five six seven".
    """
    digits = normalise_order_number(order_number)
    if digits is None:
        return {
            "found": False,
            "order_number": order_number,
            "message": f"I couldn't make out an order number from {order_number!r}.",
            "say": "I couldn't make out an order number there. Could you read it to me digit "
            "by digit?",
        }
    order = _find(_orders(), digits)
    if order is None:
        return {
            "found": False,
            "order_number": digits,
            "message": f"No order with the number {_spaced(digits)} was found.",
            "say": f"I couldn't find an order with the number {_spaced(digits)}. Could you check "
            "the number and read it to me again?",
        }
    result: dict[str, Any] = {
        "found": True,
        "order_number": order.order_number,
        "status": order.status,
        "status_text": _STATUS_TEXT[order.status],
        "items": [{"name": i.name, "quantity": i.quantity} for i in order.items],
        "eta": order.eta.isoformat() if order.eta and order.status != "cancelled" else None,
    }
    if order.placed_on:
        result["placed_on"] = order.placed_on.isoformat()
    if order.delivered_on:
        result["delivered_on"] = order.delivered_on.isoformat()
    if order.carrier:
        result["carrier"] = order.carrier
    if order.tracking_number:
        result["tracking_number"] = order.tracking_number
    if order.cancelled_reason:
        result["cancelled_reason"] = order.cancelled_reason
    return result
