"""The [routing] config section, read once into plain frozen data for the router.

    settings = RoutingSettings.from_section(config.section("routing"), config.priorities)

Every mistake raises `ConfigError` through `section.error`, so it names the file, the
line, the key and a fix. The TOML this reads is documented in `EXAMPLE_TOML`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from inbox.config import DEFAULT_PRIORITIES, ConfigSection
from inbox.types import Channel

DEFAULT_CAPACITY: Mapping[str, int] = {"chat": 3, "email": 10, "sms": 5, "form": 10, "api": 5}
_SKILL_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")


@dataclass(frozen=True, slots=True)
class RelaxStep:
    """After `after` seconds of waiting, require less."""

    after: float
    drop: frozenset[str] = frozenset()  # these skills are no longer required
    drop_optional: bool = False  # the conversation's optional skills are no longer required
    any_agent: bool = False  # no skill is required any more: any online agent with room

    def apply(self, required: frozenset[str], optional: frozenset[str]) -> frozenset[str]:
        if self.any_agent:  # any agent with room, but never one outside the inbox's team
            return frozenset(s for s in required if s.startswith(TEAM_PREFIX))
        if self.drop_optional:
            required = required - optional
        return required - self.drop


# An inbox's team travels through the router as a reserved skill: a conversation of
# inbox X requires "team:X" and an agent has "team:T" for each of its teams. Relaxation
# never drops it, so no step ever routes a conversation outside its team.
TEAM_PREFIX = "team:"


def team_skill(inbox: str) -> str:
    return TEAM_PREFIX + inbox


@dataclass(frozen=True, slots=True)
class QueueRules:
    name: str
    steps: tuple[RelaxStep, ...] = ()  # sorted by `after`

    def required_at(
        self, skills: frozenset[str], optional: frozenset[str], stage: int
    ) -> frozenset[str]:
        """Skills required after the first `stage` steps have applied."""
        required = skills | optional
        for step in self.steps[:stage]:
            required = step.apply(required, optional)
        return required

    def stage_at(self, waited: float) -> int:
        return sum(1 for step in self.steps if step.after <= waited)


NO_RULES = QueueRules("")


@dataclass(frozen=True, slots=True)
class RoutingSettings:
    priorities: tuple[str, ...] = DEFAULT_PRIORITIES
    skills: frozenset[str] = frozenset()  # known skills; empty: any name is accepted
    queues: Mapping[str, QueueRules] = field(default_factory=dict)
    sla_seconds: Mapping[str, float] = field(default_factory=dict)  # priority -> target
    capacity: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_CAPACITY))
    offline_grace_seconds: float = 30.0
    accept_timeout_seconds: float = 60.0  # 0 disables
    requeue_on_offline: frozenset[str] = frozenset({"chat"})  # channels given back at once
    # inboxes whose conversations are never offered: agents take them ("take next"); from
    # [cases] `assignment = "pull"` (issue 17), set by the wiring
    pull_only: frozenset[str] = frozenset()

    def rules_for(self, queue: str) -> QueueRules:
        return self.queues.get(queue) or self.queues.get("default") or NO_RULES

    @classmethod
    def from_section(
        cls, section: ConfigSection, priorities: Sequence[str] = DEFAULT_PRIORITIES
    ) -> RoutingSettings:
        levels = tuple(priorities)
        skills = _skills(section)
        known = frozenset(skills)

        queues: dict[str, QueueRules] = {}
        for q in section.sections("queues"):
            name = q.str("name")
            if name in queues:
                raise q.error("name", f"queue {name!r} is defined twice", fix="merge the two")
            steps = [_step(q, index, item, known) for index, item in enumerate(q.sections("relax"))]
            afters = [s.after for s in steps]
            if len(set(afters)) != len(afters):
                raise q.error("relax", "two steps share one `after`", fix="merge them")
            q.reject_unknown()
            queues[name] = QueueRules(name, tuple(sorted(steps, key=lambda s: s.after)))

        sla_section = section.section("sla_seconds")
        sla: dict[str, float] = {}
        for key in sla_section.keys():
            if key not in levels:
                raise sla_section.error(
                    key, "not a priority level", fix=f"use one of {list(levels)} ([priorities])"
                )
            sla[key] = sla_section.float(key, min=1)

        cap_section = section.section("capacity")
        capacity = dict(DEFAULT_CAPACITY)
        channels = [c.value for c in Channel]
        for key in cap_section.keys():
            if key not in channels:
                raise cap_section.error(key, "not a channel", fix=f"use one of {channels}")
            capacity[key] = cap_section.int(key, min=0, max=1000)

        requeue = section.str_list("requeue_on_offline", ["chat"])
        for name in requeue:
            if name not in channels:
                raise section.error(
                    "requeue_on_offline", f"{name!r} is not a channel", fix=f"one of {channels}"
                )
        settings = cls(
            priorities=levels,
            skills=known,
            queues=queues,
            sla_seconds=sla,
            capacity=capacity,
            offline_grace_seconds=section.float("offline_grace_seconds", 30.0, min=0, max=3600),
            accept_timeout_seconds=section.float("accept_timeout_seconds", 60.0, min=0),
            requeue_on_offline=frozenset(requeue),
        )
        section.reject_unknown()
        return settings


def _skills(section: ConfigSection) -> list[str]:
    skills: list[str] = list(section.str_list("skills", []))
    for name in skills:
        if not _SKILL_RE.fullmatch(name):
            raise section.error(
                "skills",
                f"bad skill name {name!r}",
                fix="lower-case letters, digits, '_', '-' or '.', e.g. \"billing\"",
            )
    if len(set(skills)) != len(skills):
        raise section.error("skills", "a skill is listed twice", fix="list each skill once")
    return skills


def _check_known(
    step: ConfigSection, key: str, names: Iterable[str], known: frozenset[str]
) -> None:
    for name in names:
        if known and name not in known:
            raise step.error(key, f"unknown skill {name!r}", fix="add it to routing.skills")


def _step(
    queue: ConfigSection, index: int, step: ConfigSection, known: frozenset[str]
) -> RelaxStep:
    after = step.float("after", min=0)
    drop = step.str_list("drop", [])
    _check_known(step, "drop", drop, known)
    result = RelaxStep(
        after=after,
        drop=frozenset(drop),
        drop_optional=step.bool("drop_optional", False),
        any_agent=step.bool("any_agent", False),
    )
    step.reject_unknown()
    if not (result.drop or result.drop_optional or result.any_agent):
        raise step.error(
            None,
            "a relaxation step must relax something",
            fix='set drop = ["skill"], drop_optional = true or any_agent = true',
        )
    return result


EXAMPLE_TOML = """\
[routing]
# Skills agents can have and conversations can require. Names: lower-case letters,
# digits, '_', '-', '.'. Leave empty to accept any name.
skills = ["billing", "tech", "french", "german", "vip"]
# Seconds an agent whose sockets are all gone stays assigned before their open chats
# go back to the queue (ahead of other waiting conversations of the same priority).
offline_grace_seconds = 30
# Seconds an agent has to accept or answer a routed conversation before it is routed
# to someone else; 0 disables the timeout.
accept_timeout_seconds = 60
# Channels whose open conversations go back to the queue when their agent goes
# offline. Not-yet-accepted conversations of every channel always go back.
requeue_on_offline = ["chat"]

# Concurrent conversations per agent, per channel (an agent's own setting wins).
[routing.capacity]
chat = 3
email = 10
sms = 5
form = 10
api = 5

# First-response targets per priority level, in seconds (levels from [priorities]).
# A conversation still waiting past its target is raised one level and an
# `sla.breached` event goes to supervisors. Leave a level out for no target.
[routing.sla_seconds]
urgent = 60
high = 300
normal = 900
low = 3600

# Relaxation per queue; a queue is an inbox name. The "default" queue's steps apply
# to inboxes without their own entry. Steps count from when the conversation
# (re)entered the queue.
[[routing.queues]]
name = "default"
  [[routing.queues.relax]]
  after = 60            # seconds waited
  drop_optional = true  # stop requiring the conversation's optional skills
  [[routing.queues.relax]]
  after = 300
  any_agent = true      # any online agent with room may take it

[[routing.queues]]
name = "support@example.com"
  [[routing.queues.relax]]
  after = 120
  drop = ["french"]     # stop requiring these skills
"""
