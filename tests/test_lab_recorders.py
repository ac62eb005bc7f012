"""Ring buffers of snnlab.lab.recorders against a plain list reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snnlab.lab.recorders import EventRing, PointRing, RingBuffer, SeriesRing, SnapshotRing, TraceRing


class ListReference:
    """Unbounded list: what a reader would see without any capacity limit."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, float]] = []

    def push(self, a: list[int], b: list[float]) -> None:
        self.rows.extend(zip(a, b))


@settings(max_examples=40, deadline=None)
@given(
    capacity=st.integers(1, 12),
    ops=st.lists(
        st.one_of(st.tuples(st.just("push"), st.integers(0, 20)), st.tuples(st.just("read"), st.just(0))),
        max_size=30,
    ),
)
def test_read_since_matches_unbounded_reference(capacity: int, ops: list[tuple[str, int]]) -> None:
    ring = RingBuffer(capacity, {"a": ((), np.int64), "b": ((), np.float32)})
    ref = ListReference()
    cursor = 0  # position in ref.rows this reader has consumed
    ring_cursor = 0
    counter = 0
    for op, k in ops:
        if op == "push":
            a = list(range(counter, counter + k))
            b = [float(x) * 0.5 for x in a]
            counter += k
            ring.push(a=np.array(a, dtype=np.int64), b=np.array(b, dtype=np.float32))
            ref.push(a, b)
        else:
            rows, ring_cursor, dropped = ring.read_since(ring_cursor)
            # rows still held: the last `capacity` rows overall
            oldest = max(0, len(ref.rows) - capacity)
            expected = ref.rows[max(cursor, oldest) :]
            assert dropped == max(0, oldest - cursor)
            assert rows["a"].tolist() == [x for x, _ in expected]
            np.testing.assert_allclose(rows["b"], np.array([y for _, y in expected], dtype=np.float32))
            cursor = len(ref.rows)
        assert len(ring) == min(len(ref.rows), capacity)
        assert ring.written == len(ref.rows)


def test_latest_and_wraparound() -> None:
    ring = TraceRing(4, 2)
    for t in range(7):
        ring.push(steps=np.array([t]), values=np.array([[t, -t]], dtype=np.float32))
    rows = ring.latest()
    assert rows["steps"].tolist() == [3, 4, 5, 6]
    assert rows["values"].dtype == np.float32 and rows["values"].shape == (4, 2)
    assert rows["values"][:, 1].tolist() == [-3, -4, -5, -6]
    assert ring.latest(2)["steps"].tolist() == [5, 6]


def test_push_more_than_capacity_keeps_last_rows_and_counts_them() -> None:
    ring = SeriesRing(3)
    ring.push(steps=np.arange(10), values=np.arange(10, dtype=np.float32))
    rows, cursor, dropped = ring.read_since(0)
    assert rows["steps"].tolist() == [7, 8, 9]
    assert cursor == 10 and dropped == 7


def test_event_ring_push_step_and_dtypes() -> None:
    ring = EventRing(10)
    ring.push_step(5, np.array([1, 3]))
    ring.push_step(6, np.array([], dtype=np.int64))
    ring.push_step(7, np.array([0]))
    rows, _, _ = ring.read_since(0)
    assert rows["steps"].dtype == np.int64 and rows["neurons"].dtype == np.int32
    assert rows["steps"].tolist() == [5, 5, 7] and rows["neurons"].tolist() == [1, 3, 0]


def test_memory_is_preallocated_and_constant() -> None:
    rings = [EventRing(100), TraceRing(50, 3), SeriesRing(50, 2), PointRing(20), SnapshotRing(5, (4, 4))]
    before = [r.nbytes for r in rings]
    for t in range(1000):
        rings[0].push_step(t, np.arange(3))
        rings[1].push(steps=np.array([t]), values=np.zeros((1, 3)))
        rings[2].push(steps=np.array([t]), values=np.zeros((1, 2)))
        rings[3].push(x=np.array([t]), y=np.array([t]))
        rings[4].push(steps=np.array([t]), matrix=np.zeros((1, 4, 4)))
    assert [r.nbytes for r in rings] == before
    assert [len(r) for r in rings] == [100, 50, 50, 20, 5]


def test_state_round_trip_and_clear() -> None:
    ring = PointRing(4)
    ring.push(x=np.arange(6), y=np.arange(6) * 2)
    other = PointRing(4)
    other.load_state(ring.state())
    assert other.written == 6
    assert other.latest()["y"].tolist() == [4, 6, 8, 10]
    ring.clear()
    assert len(ring) == 0 and ring.read_since(6)[0]["x"].size == 0


def test_bad_arguments_raise_with_names() -> None:
    with pytest.raises(ValueError, match="capacity"):
        RingBuffer(0, {"a": ((), np.int64)})
    with pytest.raises(ValueError, match="fields"):
        RingBuffer(3, {})
    ring = TraceRing(3, 2)
    with pytest.raises(ValueError, match="values"):
        ring.push(steps=np.array([0]), values=np.zeros((1, 3)))
    with pytest.raises(ValueError, match="fields"):
        ring.push(steps=np.array([0]))
    with pytest.raises(ValueError, match="same number of rows"):
        ring.push(steps=np.array([0, 1]), values=np.zeros((1, 2)))
    with pytest.raises(ValueError, match="fields"):
        ring.load_state({"written": 0, "fields": {"x": np.zeros(3)}})
