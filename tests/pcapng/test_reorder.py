"""The reorder buffer: nodes merged in timestamp order, within its bounds."""

from __future__ import annotations

from winspect.client.reorder import ReorderBuffer


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_node_that_has_sent_nothing_holds_everything_back() -> None:
    buf: ReorderBuffer[str] = ReorderBuffer(["a", "b"])
    buf.push("a", 10, "a10")
    buf.push("a", 20, "a20")
    assert buf.ready() == []
    buf.push("b", 15, "b15")
    assert buf.ready() == ["a10", "b15"]  # a20 may still be overtaken by b
    buf.push("b", 30, "b30")
    assert buf.ready() == ["a20"]
    assert buf.drain() == ["b30"]
    assert buf.late == 0


def test_an_ended_node_no_longer_holds_back() -> None:
    buf: ReorderBuffer[str] = ReorderBuffer(["a", "b"])
    buf.push("a", 10, "a10")
    buf.node_done("b")
    assert buf.ready() == ["a10"]


def test_chunks_from_several_nodes_come_out_in_time_order() -> None:
    buf: ReorderBuffer[int] = ReorderBuffer(["a", "b", "c"])
    out: list[int] = []
    chunks = [
        ("a", range(0, 100, 3)),
        ("b", range(1, 60, 3)),
        ("c", range(2, 100, 3)),
        ("b", range(61, 100, 3)),
    ]
    for node, stamps in chunks:
        for ts in stamps:
            buf.push(node, ts, ts)
        out += buf.ready()
    for node in ("a", "b", "c"):
        buf.node_done(node)
        out += buf.ready()
    out += buf.drain()
    assert out == sorted(out) and len(out) == 100
    assert buf.late == 0


def test_hold_time_releases_without_the_quiet_node_and_late_packets_are_counted() -> None:
    clock = Clock()
    buf: ReorderBuffer[str] = ReorderBuffer(["busy", "quiet"], hold_seconds=2.0, clock=clock)
    buf.push("busy", 100, "b100")
    buf.push("busy", 200, "b200")
    clock.now = 1.9
    assert buf.ready() == []
    clock.now = 2.0
    assert buf.ready() == ["b100", "b200"]
    buf.push("quiet", 150, "q150")  # older than what is already out: written at once, counted
    assert buf.ready() == ["q150"]
    assert buf.late == 1


def test_packet_and_byte_bounds_force_the_oldest_out() -> None:
    buf: ReorderBuffer[int] = ReorderBuffer(["a", "b"], max_packets=3)
    for ts in (5, 1, 4, 2):
        buf.push("a", ts, ts)
    assert buf.ready() == [1]
    assert len(buf) == 3
    sized: ReorderBuffer[int] = ReorderBuffer(["a", "b"], max_bytes=100)
    sized.push("a", 1, 1, size=60)
    sized.push("a", 2, 2, size=60)
    assert sized.ready() == [1]
