"""The suite's own scheduling helpers (tests/helpers/schedule.py)."""

from __future__ import annotations

import threading

from tests.helpers.schedule import SpeechSlots, dispatch_order, expected_s


def _simulate(order: list[str], workers: int, length: dict[str, float]) -> list[tuple[float, float, str]]:
    """(start, end, name) as xdist runs `order`: two per worker, then one per finished test."""
    import heapq

    tail = [0.0] * workers
    done: list[tuple[float, int]] = []
    runs = []
    queue = iter(order)

    def give(worker: int) -> None:
        name = next(queue, None)
        if name is not None:
            runs.append((tail[worker], tail[worker] + length[name], name))
            tail[worker] += length[name]
            heapq.heappush(done, (tail[worker], worker))

    for worker in range(workers):
        give(worker)
        give(worker)
    while done:
        _, worker = heapq.heappop(done)
        give(worker)
    return runs


def test_long_tests_first_and_never_more_speech_calls_than_allowed(monkeypatch) -> None:
    # Enough other work to fill three workers while the speech calls take turns on two.
    length = {f"speech{i}": 30.0 - i for i in range(8)} | {f"long{i}": 10.0 for i in range(40)}
    length |= {f"short{i}": 0.05 for i in range(40)}
    monkeypatch.setattr("tests.helpers.schedule.SLOW_S", {k: v for k, v in length.items() if v > 1})
    names = sorted(length)  # collection order: alphabetical, nothing to do with length
    order = dispatch_order(names, str, lambda n: n.startswith("speech"), workers=5, speech_calls=2)

    assert sorted(order) == names  # every test, once
    assert [expected_s(n) for n in order[:4]] == [30.0, 29.0, 28.0, 27.0]  # the longest first
    runs = _simulate(order, 5, length)
    speech = [(s, e) for s, e, n in runs if n.startswith("speech")]
    for start, _ in speech:
        assert sum(1 for s, e in speech if s <= start < e) <= 2
    # Within one long test of the best any order could do.
    best = max(sum(length.values()) / 5, sum(e - s for s, e in speech) / 2)
    assert max(e for _, e, _ in runs) <= best + 10.0


def test_speech_slots_let_through_as_many_as_there_are_slots() -> None:
    slots = SpeechSlots.create(2)
    try:
        worker = SpeechSlots(slots.path)  # another process would open it by path
        worker.acquire()
        worker.acquire()
        third_in = threading.Event()

        def third() -> None:
            SpeechSlots(slots.path).acquire()
            third_in.set()

        thread = threading.Thread(target=third)
        thread.start()
        assert not third_in.wait(0.3)  # both slots taken: the third caller waits
        worker.release()
        assert third_in.wait(5)  # ...and gets in as soon as one is given back
        thread.join(5)
    finally:
        slots.remove()
    assert not slots.path.exists()
