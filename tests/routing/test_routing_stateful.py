"""Hypothesis drives the pure router through random event sequences and checks the
invariants after every step, from its own bookkeeping of the decisions."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
)

from inbox.errors import Conflict
from inbox.types import Presence
from routing.core import Router
from routing.decisions import Assigned, Requeued, Unassigned
from routing.settings import QueueRules, RelaxStep, RoutingSettings

SKILLS = ["a", "b", "c"]
CHANNELS = ["chat", "email"]
RULES = QueueRules("default", (RelaxStep(60, drop_optional=True), RelaxStep(300, any_agent=True)))
SETTINGS = RoutingSettings(
    queues={"default": RULES},
    sla_seconds={"high": 60, "normal": 120, "low": 240},
    accept_timeout_seconds=30,
    capacity={"chat": 2, "email": 3},
)
skill_sets = st.frozensets(st.sampled_from(SKILLS), max_size=2)


class RouterMachine(RuleBasedStateMachine):
    convs = Bundle("convs")

    @initialize()
    def start(self) -> None:
        self.router = Router(SETTINGS)
        self.now = 1000.0
        self.next_cid = 0
        self.owner: dict[int, int] = {}  # conversation -> agent, from the decisions
        self.spec: dict[int, tuple[str, frozenset[str], frozenset[str]]] = {}
        self.wait_from: dict[int, float] = {}
        self.agents: dict[int, tuple[frozenset[str], dict[str, int], Presence]] = {}

    # -- bookkeeping of decisions -------------------------------------------------------
    def apply(self, decisions: list) -> None:
        for d in decisions:
            if isinstance(d, Assigned):
                assert d.conversation_id not in self.owner, "one conversation, two agents"
                skills, cap, presence = self.agents[d.agent_id]
                if d.reason == "routed":
                    assert presence is Presence.ONLINE
                    channel, hard, optional = self.spec[d.conversation_id]
                    waited = self.now - self.wait_from[d.conversation_id]
                    allowed = RULES.required_at(hard, optional, RULES.stage_at(waited))
                    assert allowed <= skills, f"agent {d.agent_id} lacks {allowed - skills}"
                self.owner[d.conversation_id] = d.agent_id
                # capacity is checked when work is given (an admin may lower it later)
                ch = self.spec[d.conversation_id][0]
                load = sum(
                    1 for c, a in self.owner.items() if a == d.agent_id and self.spec[c][0] == ch
                )
                assert load <= cap[ch], f"agent {d.agent_id} over capacity on {ch}"
            elif isinstance(d, Unassigned):
                assert self.owner.pop(d.conversation_id) == d.agent_id
            elif isinstance(d, Requeued):
                self.wait_from[d.conversation_id] = d.at
                channel, _, optional = self.spec[d.conversation_id]
                self.spec[d.conversation_id] = (channel, frozenset(d.skills), optional)

    # -- rules ----------------------------------------------------------------------------
    @rule(
        aid=st.integers(0, 4),
        levels=st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 10), max_size=3),
        chat=st.integers(0, 2),
        email=st.integers(0, 3),
        presence=st.sampled_from(list(Presence)),
    )
    def upsert_agent(
        self, aid: int, levels: dict, chat: int, email: int, presence: Presence
    ) -> None:
        cap = {"chat": chat, "email": email}
        if aid in self.agents:
            presence = self.agents[aid][2] if presence is Presence.OFFLINE else presence
        self.agents[aid] = (frozenset(levels), cap, presence)
        self.apply(self.router.upsert_agent(aid, levels, self.now, capacity=cap, presence=presence))

    @rule(aid=st.integers(0, 4), presence=st.sampled_from(list(Presence)))
    def set_presence(self, aid: int, presence: Presence) -> None:
        if aid not in self.agents:
            return
        skills, cap, _ = self.agents[aid]
        self.agents[aid] = (skills, cap, presence)
        self.apply(self.router.set_presence(aid, presence, self.now))

    @rule(aid=st.integers(0, 4))
    def remove_agent(self, aid: int) -> None:
        if aid not in self.agents:
            return
        skills, cap, _ = self.agents[aid]
        self.agents[aid] = (skills, cap, Presence.OFFLINE)
        self.apply(self.router.remove_agent(aid, self.now))
        del self.agents[aid]

    @rule(
        target=convs,
        priority=st.sampled_from(["urgent", "high", "normal", "low"]),
        channel=st.sampled_from(CHANNELS),
        hard=skill_sets,
        optional=skill_sets,
    )
    def enqueue(self, priority: str, channel: str, hard: frozenset, optional: frozenset) -> int:
        cid = self.next_cid
        self.next_cid += 1
        self.spec[cid] = (channel, hard, optional - hard)
        self.wait_from[cid] = self.now
        self.apply(
            self.router.enqueue(
                cid,
                self.now,
                priority=priority,
                channel=channel,
                skills=hard,
                optional_skills=optional - hard,
            )
        )
        return cid

    @rule(cid=consumes(convs))
    def resolve(self, cid: int) -> None:
        self.owner.pop(cid, None)
        self.apply(self.router.resolve(cid, self.now))
        self.spec.pop(cid, None)

    @rule(cid=convs)
    def accept(self, cid: int) -> None:
        if cid in self.owner:
            self.apply(self.router.accept(cid, self.now, replied=True))

    @rule(cid=convs)
    def unassign(self, cid: int) -> None:
        if cid in self.owner and cid in self.spec:
            self.apply(self.router.unassign(cid, self.now))

    @rule(cid=convs, skills=skill_sets)
    def transfer_to_skills(self, cid: int, skills: frozenset) -> None:
        if cid in self.spec:
            self.spec[cid] = (self.spec[cid][0], skills, frozenset())
            self.apply(self.router.transfer_to_skills(cid, skills, self.now))

    @rule(cid=convs, aid=st.integers(0, 4))
    def transfer_to_agent(self, cid: int, aid: int) -> None:
        if cid not in self.spec or aid not in self.agents:
            return
        try:
            out = self.router.transfer_to_agent(cid, aid, self.now)
        except Conflict:
            return
        self.apply(out)

    @rule(dt=st.sampled_from([0.5, 5, 29, 31, 61, 130, 301]))
    def advance(self, dt: float) -> None:
        self.now += dt
        self.apply(self.router.tick(self.now))

    @rule()
    def drain(self) -> None:
        """With time, relaxation lets any online agent with room take anything: resolving
        work as it is assigned empties the queue of every channel someone can serve."""
        self.now += 10_000
        self.apply(self.router.tick(self.now))
        served = {
            ch
            for ch in CHANNELS
            for skills, cap, presence in self.agents.values()
            if presence is Presence.ONLINE and cap[ch] > 0
        }
        # each round: agents finish (or time out on) their work, exclusions lapse
        for _ in range(50):
            for cid in list(self.owner):
                self.owner.pop(cid)
                self.apply(self.router.resolve(cid, self.now))
                self.spec.pop(cid, None)
            if not [w for w in self.router.waiting() if w.channel in served]:
                break
            self.now += SETTINGS.accept_timeout_seconds + 1
            self.apply(self.router.tick(self.now))
        stuck = [w for w in self.router.waiting() if w.channel in served]
        assert not stuck, f"still waiting with an online agent able to serve: {stuck}"

    # -- invariants -----------------------------------------------------------------------
    @invariant()
    def loads_match_the_decisions(self) -> None:
        if not hasattr(self, "router"):
            return
        for view in self.router.agents():
            mine = [c for c, a in self.owner.items() if a == view.agent_id]
            assert sorted(mine) == list(view.assigned)
            for ch in CHANNELS:
                n = sum(1 for c in mine if self.spec[c][0] == ch)
                assert view.load.get(ch, 0) == n

    @invariant()
    def relaxation_is_exactly_the_configured_one(self) -> None:
        if not hasattr(self, "router"):
            return
        for w in self.router.waiting():
            assert w.conversation_id not in self.owner
            _channel, hard, optional = self.spec[w.conversation_id]
            stage = RULES.stage_at(self.now - self.wait_from[w.conversation_id])
            assert frozenset(w.required_skills) == RULES.required_at(hard, optional, stage)

    @invariant()
    def no_idle_eligible_agent_while_work_waits(self) -> None:
        if not hasattr(self, "router"):
            return
        views = self.router.agents()
        for w in self.router.waiting():
            need = set(w.required_skills)
            for a in views:
                if a.presence != "online" or a.room(w.channel) <= 0:
                    continue
                if a.agent_id in w.excluded_agents:
                    continue
                assert not need <= set(a.skills), (
                    f"agent {a.agent_id} idle with room while {w.conversation_id} waits"
                )


RouterMachine.TestCase.settings = settings(
    max_examples=120,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_router_state_machine = RouterMachine.TestCase


@pytest.mark.parametrize("seed", [1, 2])
def test_many_agents_many_conversations_smoke(seed: int) -> None:
    """A larger random run with the same checks as the machine, without shrinking."""
    import random

    rng = random.Random(seed)
    r = Router(SETTINGS)
    now = 0.0
    for aid in range(30):
        levels = {s: rng.randint(1, 10) for s in rng.sample(SKILLS, rng.randint(0, 3))}
        r.upsert_agent(aid, levels, now, presence=Presence.ONLINE)
    owner: dict[int, int] = {}
    for cid in range(2000):
        now += rng.random()
        out = r.enqueue(
            cid,
            now,
            priority=rng.choice(["high", "normal"]),
            channel=rng.choice(CHANNELS),
            skills=rng.sample(SKILLS, rng.randint(0, 2)),
        )
        if owner and rng.random() < 0.9:
            done = rng.choice(sorted(owner))
            owner.pop(done)
            out += r.resolve(done, now)
        out += r.tick(now)
        for d in out:
            if isinstance(d, Assigned):
                assert d.conversation_id not in owner
                owner[d.conversation_id] = d.agent_id
            elif isinstance(d, Unassigned):
                assert owner.pop(d.conversation_id) == d.agent_id
            if isinstance(d, Assigned):
                r.accept(d.conversation_id, now)
    for a in r.agents():
        for ch in CHANNELS:
            assert a.load.get(ch, 0) <= a.capacity[ch]
    assert sum(len(a.assigned) for a in r.agents()) == len(owner)
