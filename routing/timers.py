"""The router's timers: (due, seq, kind, conversation id), fired in (due, seq) order.

Almost every timer is due a fixed delay after `now` (the accept window, a priority's SLA
target, a relaxation step), and `now` only grows: the timers of one kind and delay come
in due order. Each (kind, delay) gets a `Lane`, a FIFO appended to in O(1); a timer due
before its lane's last one (counted from an older time: a rebuilt conversation's
enqueued_at, a requeue's wait) goes to a heap instead. The next timer is the least
(due, seq) over the lanes' heads and the heap's, so the order is the one a single heap
would give. A lane keeps its timers in three lists side by side (dues, seqs, conversation
ids; fired ones before `head`) rather than one list of tuples: the router sets three
timers per decision, and a tuple is an object the cyclic collector tracks; list.append
is also cheaper to call than deque.append (the interpreter specializes it). One heap of
tuples for all timers cost more, mostly in the young collections it caused (the figures
are in bench/README.md).

Timers are not cancelled: the router fires one only while its due is still that
conversation's due for that kind.
"""

from __future__ import annotations

from heapq import heappop, heappush

Timer = tuple[float, int, int, int]  # due, seq, kind, conversation id


class Lane:
    """The timers of one kind that are due one delay after they were set, in due order
    (appended to by `Timers.push`)."""

    __slots__ = ("cids", "dues", "head", "kind", "last", "seqs")

    def __init__(self, kind: int) -> None:
        self.kind = kind
        self.dues: list[float] = []
        self.seqs: list[int] = []
        self.cids: list[int] = []
        self.head = 0  # the timers before it have fired
        self.last = float("-inf")  # the due of the last timer appended

    def pop(self) -> tuple[float, int, int]:
        """The first timer not fired yet (there is one): due, seq, conversation id."""
        at = self.head
        timer = (self.dues[at], self.seqs[at], self.cids[at])
        at += 1
        if at >= 1024 and 2 * at >= len(self.dues):  # drop the fired half
            del self.dues[:at], self.seqs[:at], self.cids[:at]
            at = 0
        self.head = at
        return timer


class Timers:
    __slots__ = ("_by_delay", "heap", "lanes")

    def __init__(self) -> None:
        self.heap: list[Timer] = []  # timers that were out of order in their lane
        self.lanes: list[Lane] = []
        self._by_delay: dict[tuple[int, float], Lane] = {}

    def lane(self, kind: int, delay: float) -> Lane:
        """The lane of the timers of `kind` set `delay` seconds ahead."""
        lane = self._by_delay.get((kind, delay))
        if lane is None:
            lane = self._by_delay[(kind, delay)] = Lane(kind)
            self.lanes.append(lane)
        return lane

    def push(self, lane: Lane, due: float, seq: int, cid: int) -> None:
        if due >= lane.last:
            lane.last = due
            lane.dues.append(due)
            lane.seqs.append(seq)
            lane.cids.append(cid)
        else:
            heappush(self.heap, (due, seq, lane.kind, cid))

    def pop_due(self, now: float) -> Timer | None:
        """The next timer if it is due by `now` (taken out), else None."""
        heap = self.heap
        best: Lane | None = None
        due, seq = now, -1  # the best head so far (seq -1: none yet, only due <= now)
        if heap and heap[0][0] <= now:
            due, seq = heap[0][0], heap[0][1]
        for lane in self.lanes:
            at = lane.head
            if at < len(lane.dues):
                head = lane.dues[at]
                if head < due or (head == due and (seq < 0 or lane.seqs[at] < seq)):
                    best, due, seq = lane, head, lane.seqs[at]
        if best is None:
            return heappop(heap) if seq >= 0 else None
        due, seq, cid = best.pop()
        return (due, seq, best.kind, cid)

    def next_due(self) -> float | None:
        """The least due of all timers not fired yet, or None."""
        dues = [lane.dues[lane.head] for lane in self.lanes if lane.head < len(lane.dues)]
        if self.heap:
            dues.append(self.heap[0][0])
        return min(dues, default=None)
