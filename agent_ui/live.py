"""The socket.io `/agent` namespace: live updates for the workspace.

Connect: the handshake must come from this site (`Origin` checked against the Host the
browser used and the public URL) and carry a live session cookie; anything else is
refused. Each socket joins `agent:<id>`, and either `supervisors` (supervisors and
admins see every inbox) or one `inbox:<name>` room per team of the agent.

Bus events are fanned out as small notices of ids (never customer text): the page then
re-reads what changed over HTTP, where every read is authorized again.

    server -> client  "event"     {name, conversation_id, ...ids}   conversation/message changes
                      "assigned"  {conversation_id}                  to the agent it was given to
                      "presence"  {agent_id, presence}               to supervisors and the agent
                      "escalated" {conversation_id, reason?}         to supervisors
                      "viewers"   {conversation_id, viewers: [{id, name, typing}]}
                      "visitor_typing" {conversation_id, typing}
                      "resync"    {}   the bus was away: notices may be missing, re-read all
    client -> server  "view"      {conversation_id}  join the conversation's room (authorized)
                      "leave"     {conversation_id}
                      "typing"    {conversation_id, typing}  collision notice + chat typing

Every client event re-checks the session (a signed-out or disabled agent's socket stops
working at once; sign-out and password change also disconnect it).

Several web processes (Redis configured): every process hears every bus event, so notices
driven by bus events are emitted to this process's own sockets only (`ignore_queue=True`);
the viewers notice starts in the process where an agent opened or left a conversation and
goes through python-socketio's Redis manager to the room's sockets in every process. Who
views what, and each agent's open sockets, live in `inbox.bus.presence` (per process, or in
Redis with expiry, where the router sums them).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from typing import Any

import socketio

from agent_ui import access
from agent_ui.auth import same_origin
from agent_ui.workspace import Workspace
from inbox.bus.presence import MemoryPresence, SocketPresence
from inbox.errors import BusError
from inbox.events import AgentConnection, AgentTyping, Event, EventName
from inbox.store import agents, conversations, sessions
from inbox.types import Agent
from inbox.web.untrusted import is_id

log = logging.getLogger("omnidesk.agent_ui")

NAMESPACE = "/agent"

_CONVERSATION_EVENTS = (
    EventName.CONVERSATION_QUEUED,
    EventName.CONVERSATION_ASSIGNED,
    EventName.CONVERSATION_UNASSIGNED,
    EventName.CONVERSATION_RESOLVED,
    EventName.CONVERSATION_REOPENED,
    EventName.CONVERSATION_UPDATED,
    EventName.MESSAGE_RECEIVED,
    EventName.MESSAGE_SENT,
    EventName.MESSAGE_DELIVERY_CHANGED,
    EventName.SLA_BREACHED,
    EventName.SLA_WARNING,
    EventName.CONVERSATION_STATUS_CHANGED,
    EventName.CONVERSATION_PRIORITY_CHANGED,  # issue 17: the page shows the new priority
    EventName.CONVERSATION_ESCALATED,
    EventName.ACTIVITY_APPENDED,  # and the timeline its entry
)
_IDS = ("conversation_id", "message_id", "agent_id", "previous_agent_id")


@dataclass
class _Conn:
    session_id: str
    agent: Agent
    viewing: set[int] = field(default_factory=set)


def _int(data: Any, key: str) -> int | None:
    value = data.get(key) if isinstance(data, dict) else None
    return value if is_id(value) else None


class AgentNamespace(socketio.AsyncNamespace):  # type: ignore[misc]  # socketio is untyped
    def __init__(self, ws: Workspace, presence: SocketPresence | None = None) -> None:
        super().__init__(NAMESPACE)
        self.ws = ws
        self.conns: dict[str, _Conn] = {}
        # agents' sockets (for the router) and who views which conversation (collision)
        self.presence = presence or MemoryPresence()
        self._typing: dict[tuple[str, int], bool] = {}  # (sid, conversation) -> typing

    def attach(self) -> None:
        for name in _CONVERSATION_EVENTS:
            self.ws.bus.subscribe(name, self._on_conversation_event)
        self.ws.bus.subscribe(EventName.AGENT_PRESENCE, self._on_presence)
        self.ws.bus.subscribe(EventName.VISITOR_TYPING, self._on_visitor_typing)
        self.ws.bus.subscribe(EventName.BUS_RESUMED, self._on_bus_resumed)

    async def _announce(self, event: Event) -> None:
        """A notice for other processes; lost while the bus is away (they resync after)."""
        try:
            await self.ws.bus.publish(event)
        except BusError as exc:
            log.warning("agent socket: %s not announced: %s", event.name, exc.message)

    # -- connection -----------------------------------------------------------------------
    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        if not same_origin(environ.get("HTTP_ORIGIN"), environ.get("HTTP_HOST"), self.ws.settings):
            log.info("agent socket refused: origin %r", environ.get("HTTP_ORIGIN"))
            raise socketio.exceptions.ConnectionRefusedError("origin not allowed")
        cookie_sid = ""
        try:
            jar: SimpleCookie = SimpleCookie(environ.get("HTTP_COOKIE", ""))
            morsel = jar.get(self.ws.settings.cookie_name)
            cookie_sid = morsel.value if morsel is not None else ""
        except CookieError:
            pass
        session = await self._session(cookie_sid)
        if session is None:
            raise socketio.exceptions.ConnectionRefusedError("sign in first")
        agent = session.agent
        self.conns[sid] = _Conn(cookie_sid, agent)
        await self.enter_room(sid, f"agent:{agent.id}")
        if access.sees_all(agent):
            await self.enter_room(sid, "supervisors")
        else:
            for inbox in agent.teams:
                await self.enter_room(sid, f"inbox:{inbox}")
        try:
            await self.presence.agent_connected(agent.id)
        except BusError as exc:  # counted locally; the next heartbeat publishes it
            log.warning("agent socket not yet in shared presence: %s", exc.message)
        await self._announce(
            Event(EventName.AGENT_CONNECTION, AgentConnection(agent_id=agent.id, connected=True))
        )

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        conn = self.conns.pop(sid, None)
        if conn is None:
            return
        for cid in list(conn.viewing):
            await self._stop_viewing(sid, cid)
        try:
            await self.presence.agent_disconnected(conn.agent.id)
        except BusError as exc:
            log.warning("agent socket still in shared presence: %s", exc.message)
        await self._announce(
            Event(
                EventName.AGENT_CONNECTION,
                AgentConnection(agent_id=conn.agent.id, connected=False),
            )
        )

    async def _session(self, cookie_sid: str) -> sessions.Session | None:
        if not cookie_sid:
            return None
        idle = self.ws.settings.session_idle
        return await self.ws.store.read(lambda c: sessions.load_session(c, cookie_sid, idle=idle))

    async def _checked(self, sid: str) -> _Conn | None:
        """The connection's agent if its session is still live; else disconnect it."""
        conn = self.conns.get(sid)
        if conn is None:
            return None
        session = await self._session(conn.session_id)
        if session is None:
            await self.disconnect(sid)
            return None
        conn.agent = session.agent
        return conn

    async def disconnect_session(self, cookie_sid: str) -> None:
        for sid, conn in list(self.conns.items()):
            if conn.session_id == cookie_sid:
                await self.disconnect(sid)

    async def disconnect_agent(self, agent_id: int) -> None:
        for sid, conn in list(self.conns.items()):
            if conn.agent.id == agent_id:
                await self.disconnect(sid)

    # -- client events --------------------------------------------------------------------
    async def _where(self, conversation_id: int) -> tuple[str, int | None] | None:
        """(inbox, assignee) of a conversation, read now (the assignee changes)."""
        return await self.ws.store.read(
            lambda c: conversations.inbox_and_assignee(c, conversation_id)
        )

    async def on_view(self, sid: str, data: Any = None) -> dict[str, Any]:
        conn = await self._checked(sid)
        cid = _int(data, "conversation_id")
        if conn is None or cid is None:
            return {"ok": False, "error": "bad_request"}
        found = await self._where(cid)
        if found is None or not access.can_see_conversation(conn.agent, *found):
            return {"ok": False, "error": "not_found"}
        conn.viewing.add(cid)
        self._typing[(sid, cid)] = False
        await self.enter_room(sid, f"conv:{cid}")
        await self.presence.set_viewer(cid, sid, self._viewer(conn, False))
        await self._emit_viewers(cid)
        return {"ok": True}

    async def on_leave(self, sid: str, data: Any = None) -> dict[str, Any]:
        cid = _int(data, "conversation_id")
        if cid is None or sid not in self.conns:
            return {"ok": False, "error": "bad_request"}
        await self._stop_viewing(sid, cid)
        return {"ok": True}

    async def on_typing(self, sid: str, data: Any = None) -> dict[str, Any]:
        conn = await self._checked(sid)
        cid = _int(data, "conversation_id")
        if conn is None or cid is None or cid not in conn.viewing:
            return {"ok": False, "error": "not_found"}
        typing = bool(data.get("typing"))
        if self._typing.get((sid, cid)) != typing:
            self._typing[(sid, cid)] = typing
            await self.presence.set_viewer(cid, sid, self._viewer(conn, typing))
            await self._emit_viewers(cid)
            await self._announce(
                Event(
                    EventName.AGENT_TYPING,
                    AgentTyping(conversation_id=cid, typing=typing, name=conn.agent.name),
                )
            )
        return {"ok": True}

    async def _stop_viewing(self, sid: str, cid: int) -> None:
        conn = self.conns.get(sid)
        if conn is not None:
            conn.viewing.discard(cid)
        if self._typing.pop((sid, cid), None) is not None:
            await self.presence.drop_viewer(cid, sid)
            await self._emit_viewers(cid)
        await self.leave_room(sid, f"conv:{cid}")

    @staticmethod
    def _viewer(conn: _Conn, typing: bool) -> dict[str, Any]:
        return {"id": conn.agent.id, "name": conn.agent.name, "typing": typing}

    async def _emit_viewers(self, cid: int) -> None:
        """Every process's viewers of `cid`, to the room's sockets in every process."""
        by_agent: dict[int, dict[str, Any]] = {}
        for viewer in await self.presence.viewers(cid):
            entry = by_agent.setdefault(
                viewer["id"], {"id": viewer["id"], "name": viewer["name"], "typing": False}
            )
            entry["typing"] = entry["typing"] or bool(viewer.get("typing"))
        await self.emit(
            "viewers",
            {"conversation_id": cid, "viewers": list(by_agent.values())},
            room=f"conv:{cid}",
        )

    # -- bus -> sockets -------------------------------------------------------------------
    async def _on_conversation_event(self, event: Event) -> None:
        cid = event.data.get("conversation_id")
        if not isinstance(cid, int) or not self.conns:
            return  # nobody is connected to this process: no read, no emit
        found = await self._where(cid)
        if found is None:
            return
        inbox, assignee = found
        notice: dict[str, Any] = {"name": event.name}
        for key in _IDS:
            if isinstance(event.data.get(key), int):
                notice[key] = event.data[key]
        if isinstance(event.data.get("status"), str):
            notice["status"] = event.data["status"][:16]
        rooms = [f"inbox:{inbox}", "supervisors"]
        for key in ("agent_id", "previous_agent_id"):  # the agents it moved between
            if isinstance(notice.get(key), int):
                rooms.append(f"agent:{notice[key]}")
        if assignee is not None:
            rooms.append(f"agent:{assignee}")
        await self.emit("event", notice, room=rooms, ignore_queue=True)
        if event.name == EventName.CONVERSATION_ESCALATED and event.data.get("escalated"):
            await self._escalated(cid, event.data.get("reason"))
        if event.name == EventName.CONVERSATION_ASSIGNED and isinstance(
            event.data.get("agent_id"), int
        ):
            await self.emit(
                "assigned",
                {"conversation_id": cid},
                room=f"agent:{event.data['agent_id']}",
                ignore_queue=True,
            )
        await self._taken_back(event, cid)

    async def _taken_back(self, event: Event, cid: int) -> None:
        """An offer the agent did not accept in time went back to the queue: tell them."""
        agent_id = event.data.get("agent_id")
        if (
            event.name == EventName.CONVERSATION_UNASSIGNED
            and event.data.get("reason") == "accept_timeout"
            and isinstance(agent_id, int)
        ):
            await self.emit(
                "taken_back", {"conversation_id": cid}, room=f"agent:{agent_id}", ignore_queue=True
            )

    async def _escalated(self, cid: int, reason: Any) -> None:
        """Supervisors are told at once (the reason is the breach or the agent's note)."""
        notice: dict[str, Any] = {"conversation_id": cid}
        if isinstance(reason, str):
            notice["reason"] = reason[:200]
        await self.emit("escalated", notice, room="supervisors", ignore_queue=True)

    async def _on_bus_resumed(self, _event: Event) -> None:
        """Notices were lost while the bus was away: every page here re-reads its data."""
        if self.conns:
            log.info("event bus resumed; asking %d agent sockets to resync", len(self.conns))
            await self.emit("resync", {}, ignore_queue=True)

    async def _on_presence(self, event: Event) -> None:
        agent_id = event.data.get("agent_id")
        if not isinstance(agent_id, int) or not self.conns:
            return
        sent = event.data.get("presence")
        if isinstance(sent, str):
            presence = sent
        else:
            presence = await self.ws.store.read(lambda c: agents.presence_of(c, agent_id))
        notice = {"agent_id": agent_id, "presence": presence[:16]}
        rooms = ["supervisors", f"agent:{agent_id}"]
        await self.emit("presence", notice, room=rooms, ignore_queue=True)

    async def _on_visitor_typing(self, event: Event) -> None:
        cid = event.data.get("conversation_id")
        if isinstance(cid, int) and self.conns:
            await self.emit(
                "visitor_typing",
                {"conversation_id": cid, "typing": bool(event.data.get("typing"))},
                room=f"conv:{cid}",
                ignore_queue=True,
            )
