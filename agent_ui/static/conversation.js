// One conversation: the cross-channel timeline (live), reply/note, canned responses with
// "/", FAQ suggestions, tags, resolve/reopen, transfer, SMS segment counter, and the
// collision notice (other agents viewing or typing here).
import { el, getJSON, post, actionKey, socket, debounce, announce, shortcuts, me } from "./app.js";

const cid = Number(document.body.dataset.conversation);
const timeline = document.getElementById("timeline");
const form = document.getElementById("reply-form");
const text = document.getElementById("reply-text");
const subject = document.getElementById("reply-subject");
const replyError = document.getElementById("reply-error");
const collision = document.getElementById("collision");

function kind() { return form.querySelector('input[name="kind"]:checked').value; }

// -- timeline ---------------------------------------------------------------------------
function messageItem(m, contactName) {
  const note = m.status === "note";
  const li = el("li", { class: `msg ${m.direction}${note ? " note" : ""}${m.conversation_id !== cid ? " other-conv" : ""}`, dataset: { id: m.id } });
  const metaRow = el("div", { class: "msg-meta" });
  const author = m.author_kind === "agent" ? (m.author || "Agent") : m.author_kind === "contact" ? contactName : m.author_kind;
  metaRow.append(el("span", { class: `badge ch-${m.channel}` }, m.channel), " ", el("span", { class: "author" }, author), " ",
    el("time", { datetime: m.created_at }, m.created_at.slice(0, 16).replace("T", " ")));
  if (note) metaRow.append(" ", el("span", { class: "status st-note" }, "private note"));
  else if (m.direction === "outbound") metaRow.append(" ", el("span", { class: `status st-${m.status}`, title: m.failure_reason || "" }, m.status));
  if (m.conversation_id !== cid) metaRow.append(" ", el("a", { class: "muted", href: `/conversations/${m.conversation_id}` }, `#${m.conversation_id}`));
  li.append(metaRow);
  if (m.refers_to) {
    const flag = el("p", { class: "thread-flag", role: "note" }, "Refers to ");
    flag.append(el("a", { href: `/conversations/${m.refers_to}` }, `conversation #${m.refers_to}`),
      " of another contact: not added to it. Check before answering.");
    li.append(flag);
  }
  if (m.subject) li.append(el("div", { class: "msg-subject" }, m.subject));
  li.append(el("div", { class: "msg-text" }, m.text));
  if (m.attachments.length) {
    const ul = el("ul", { class: "attachments" });
    for (const a of m.attachments) {
      const item = el("li");
      item.append(el("a", { href: a.url, download: true }, a.filename));
      ul.append(item);
    }
    li.append(ul);
  }
  return li;
}

const contactName = document.getElementById("conv-title").firstChild.textContent.trim();
const refresh = debounce(async () => {
  let data;
  try { data = await getJSON(`/agent/api/conversations/${cid}`); } catch { return; }
  const atBottom = timeline.scrollHeight - timeline.scrollTop - timeline.clientHeight < 40;
  const frag = document.createDocumentFragment();
  for (const m of data.timeline) frag.append(messageItem(m, contactName));
  timeline.replaceChildren(frag);
  if (atBottom) timeline.scrollTop = timeline.scrollHeight;
  document.getElementById("conv-status").textContent = data.status;
  document.getElementById("conv-assignee").textContent = data.assignee || "nobody (waiting)";
  document.getElementById("resolve").hidden = !["open", "pending"].includes(data.status);
  document.getElementById("reopen").hidden = data.status !== "resolved";
  renderCase(data.case);
  renderSuggestions(data.suggestions);
  document.body.dataset.updated = String(Date.now());
}, 100);

function timeOrDash(iso, extra = "") {
  if (!iso) return ["—"];
  return [el("time", { datetime: iso }, iso), extra];
}
function renderCase(c) {
  document.getElementById("conv-snoozed").replaceChildren(...timeOrDash(c.snoozed_until));
  const due = document.getElementById("conv-sla-due");
  due.dataset.state = c.sla_state || "";
  due.replaceChildren(...timeOrDash(c.sla_due_at, ` (${c.sla_state})`));
  document.getElementById("conv-escalated").textContent = c.escalated ? "yes" : "no";
  // follow the status when it changes, not while the agent is choosing a new one
  const select = document.getElementById("status-select");
  if (select.dataset.current !== c.status) {
    select.dataset.current = c.status;
    select.value = c.status === "resolved" ? "solved" : c.status;
  }
}

function renderSuggestions(list) {
  const box = document.getElementById("suggestions-box");
  const ul = document.getElementById("suggestions");
  const frag = document.createDocumentFragment();
  for (const s of list) {
    const li = el("li");
    li.append(el("button", { type: "button", class: "link suggestion", dataset: { answer: s.answer } }, s.question), " ", el("small", { class: "muted" }, `${s.score}%`));
    frag.append(li);
  }
  ul.replaceChildren(frag);
  box.hidden = !list.length;
}

timeline.scrollTop = timeline.scrollHeight;

// -- live -------------------------------------------------------------------------------
if (socket) {
  // on every (re)connect: join the room and re-read what may have changed meanwhile
  const join = () => { socket.emit("view", { conversation_id: cid }); refresh(); };
  socket.on("connect", join);
  if (socket.connected) join();
  socket.on("event", (e) => { if (e.conversation_id === cid || e.name === "conversation.updated") refresh(); });
  socket.on("resync", refresh); // the server's bus was away: notices may have been missed
  socket.on("viewers", (v) => {
    if (v.conversation_id !== cid) return;
    const others = v.viewers.filter((x) => x.id !== me);
    collision.hidden = !others.length;
    collision.textContent = others.map((x) => `${x.name} is ${x.typing ? "typing a reply" : "viewing"} here`).join(" · ");
  });
  socket.on("visitor_typing", (v) => {
    if (v.conversation_id === cid) document.getElementById("visitor-typing").hidden = !v.typing;
  });
}
let typing = false;
const stopTyping = debounce(() => { typing = false; socket && socket.emit("typing", { conversation_id: cid, typing: false }); }, 3000);
text.addEventListener("input", () => {
  if (kind() === "reply" && !typing && text.value) { typing = true; socket && socket.emit("typing", { conversation_id: cid, typing: true }); }
  stopTyping();
  updateCounter();
  cannedFilter();
});

// -- reply / note -----------------------------------------------------------------------
// The Idempotency-Key of the draft being sent: kept while the same text is sent again after
// an error (it may have been committed), new once it went through or the draft changed.
let pending = null;
function draftKey(what) {
  if (!pending || pending.what !== what) pending = { what, key: actionKey() };
  return pending.key;
}
async function send() {
  const body = { text: text.value };
  if (!body.text.trim()) { replyError.textContent = "Write something first."; return; }
  replyError.textContent = "";
  const button = document.getElementById("send");
  button.disabled = true;
  try {
    if (kind() === "note") await post(`/agent/api/conversations/${cid}/note`, body, draftKey(JSON.stringify(["note", body])));
    else {
      if (subject) body.subject = subject.value;
      await post(`/agent/api/conversations/${cid}/reply`, body, draftKey(JSON.stringify(["reply", body])));
    }
    pending = null;
    text.value = "";
    updateCounter();
    announce(kind() === "note" ? "Note saved." : "Reply queued for delivery.");
    refresh();
  } catch (err) {
    replyError.textContent = err.message;
  } finally {
    button.disabled = false;
  }
}
form.addEventListener("submit", (ev) => { ev.preventDefault(); send(); });
text.addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); send(); return; }
  if (!menu.hidden && ["ArrowDown", "ArrowUp", "Enter", "Tab"].includes(ev.key)) {
    ev.preventDefault();
    const items = [...menu.children];
    if (ev.key === "ArrowDown") menuIndex = (menuIndex + 1) % items.length;
    else if (ev.key === "ArrowUp") menuIndex = (menuIndex - 1 + items.length) % items.length;
    else { insertCanned(items[menuIndex].dataset.text); return; }
    items.forEach((item, i) => item.setAttribute("aria-selected", String(i === menuIndex)));
  }
});
form.addEventListener("change", () => { form.classList.toggle("is-note", kind() === "note"); });

// -- SMS segments -----------------------------------------------------------------------
const counter = document.getElementById("sms-counter");
const updateCounter = counter ? debounce(async () => {
  try {
    const r = await post("/agent/api/sms-segments", { text: text.value });
    counter.textContent = `${text.value.length} characters · ${r.segments} segment${r.segments === 1 ? "" : "s"} (${r.encoding}, ${r.left} left)`;
  } catch { /* the counter is advisory */ }
}, 200) : () => {};

// -- canned responses ("/" at the start of a line) --------------------------------------
const canned = [...document.querySelectorAll("button.canned")].map((b) => ({ key: b.dataset.key, text: b.dataset.text }));
const menu = document.getElementById("canned-menu");
let menuIndex = 0;
function slashWord() {
  const upto = text.value.slice(0, text.selectionStart);
  const m = /(^|\n)\/([a-z0-9_-]*)$/.exec(upto);
  return m ? m[2] : null;
}
function cannedFilter() {
  const word = slashWord();
  const found = word === null ? [] : canned.filter((c) => c.key.startsWith(word));
  if (!found.length) { menu.hidden = true; return; }
  menuIndex = 0;
  const frag = document.createDocumentFragment();
  found.forEach((c, i) => {
    const li = el("li", { role: "option", "aria-selected": String(i === 0), dataset: { text: c.text } });
    li.append(el("strong", {}, `/${c.key}`), " ", el("span", { class: "muted" }, c.text.slice(0, 80)));
    li.addEventListener("mousedown", (ev) => { ev.preventDefault(); insertCanned(c.text); });
    frag.append(li);
  });
  menu.replaceChildren(frag);
  menu.hidden = false;
}
function insertCanned(value) {
  const pos = text.selectionStart;
  const upto = text.value.slice(0, pos).replace(/\/[a-z0-9_-]*$/, "");
  text.value = upto + value + text.value.slice(pos);
  text.selectionStart = text.selectionEnd = upto.length + value.length;
  menu.hidden = true;
  text.focus();
  updateCounter();
}
document.addEventListener("od:escape", () => { menu.hidden = true; });
document.addEventListener("click", (ev) => {
  const target = ev.target;
  if (!(target instanceof HTMLElement)) return;
  if (target.matches("button.canned")) insertCanned(target.dataset.text);
  if (target.matches("button.suggestion")) insertCanned(target.dataset.answer);
});

// -- actions ----------------------------------------------------------------------------
async function action(name, body = {}) {
  try {
    await post(`/agent/api/conversations/${cid}/${name}`, body);
    announce(`Done: ${name}.`);
    refresh();
  } catch (err) {
    announce(err.message);
    throw err;
  }
}
document.getElementById("resolve").addEventListener("click", () => action("resolve"));
document.getElementById("reopen").addEventListener("click", () => action("reopen"));
document.getElementById("status-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const status = document.getElementById("status-select").value;
  const until = document.getElementById("snooze-until").value;
  const reason = document.getElementById("status-reason").value.trim();
  const body = { status };
  if (status === "snoozed" && until) body.until = new Date(until).toISOString();
  if (reason) body.reason = reason;
  const out = document.getElementById("status-error");
  try { await action("status", body); out.textContent = ""; } catch (err) { out.textContent = err.message; }
});
document.getElementById("escalate-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const note = document.getElementById("escalate-note").value.trim();
  const out = document.getElementById("escalate-error");
  try { await action("escalate", { note }); out.textContent = ""; } catch (err) { out.textContent = err.message; }
});
document.getElementById("tags-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const tags = document.getElementById("tags-input").value.split(",").map((s) => s.trim()).filter(Boolean);
  const out = document.getElementById("tags-error");
  try { await action("tags", { tags }); out.textContent = ""; } catch (err) { out.textContent = err.message; }
});
document.getElementById("transfer-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const agent = document.getElementById("transfer-agent").value;
  const queue = document.getElementById("transfer-queue").value;
  const skills = document.getElementById("transfer-skills").value.split(",").map((s) => s.trim()).filter(Boolean);
  const out = document.getElementById("transfer-error");
  let body = { skills };
  if (agent) body = { agent_id: Number(agent) };
  else if (queue) body = { [queue.split(":")[0]]: queue.slice(queue.indexOf(":") + 1) };
  if (!agent && !queue && !skills.length) { out.textContent = "Choose an agent, an inbox or team, or give skills."; return; }
  try { await action("transfer", body); out.textContent = ""; } catch (err) { out.textContent = err.message; }
});

shortcuts.set("r", () => { form.querySelector('input[value="reply"]').checked = true; form.classList.remove("is-note"); text.focus(); });
shortcuts.set("p", () => { form.querySelector('input[value="note"]').checked = true; form.classList.add("is-note"); text.focus(); });
shortcuts.set("e", () => { if (!document.getElementById("resolve").hidden) action("resolve"); });
shortcuts.set("t", () => document.getElementById("transfer-agent").focus());
document.body.dataset.ready = "1";

// -- priority and activity log (issue 17) ------------------------------------------------
// The log's entries (who changed what, when, from what to what, why) are placed among the
// messages by time. The messages are re-rendered on every refresh: an observer puts the
// entries back each time, and `activity.appended` re-reads them.
const KIND_LABEL = { assignee: "assignee", status: "status", priority: "priority", inbox: "inbox", team: "team", tags: "tags", sla: "SLA", merge: "contact", escalation: "escalation" };
let activity = [];
function shown(value) {
  if (value === null || value === undefined || value === "") return "none";
  if (Array.isArray(value)) return value.length ? value.join(", ") : "none";
  return String(value);
}
function activityItem(a) {
  const li = el("li", { class: `activity act-${a.kind}`, dataset: { activity: a.id, at: a.at } });
  li.append(el("span", { class: "who" }, a.who), ` changed ${KIND_LABEL[a.kind] || a.kind} from `,
    el("strong", { class: "from" }, shown(a.before)), " to ", el("strong", { class: "to" }, shown(a.after)), " ",
    el("time", { datetime: a.at }, a.at.slice(0, 16).replace("T", " ")));
  if (a.reason) li.append(" — ", el("span", { class: "why" }, a.reason));
  return li;
}
function itemTime(li) {
  const t = li.dataset.at || (li.querySelector("time") && li.querySelector("time").getAttribute("datetime"));
  const ms = Date.parse(t || "");
  return Number.isNaN(ms) ? Infinity : ms;
}
const placer = new MutationObserver(placeActivity);
function placeActivity() {
  placer.disconnect();
  for (const old of timeline.querySelectorAll("li.activity")) old.remove();
  const items = [...timeline.children];
  for (const a of activity) {
    const at = Date.parse(a.at);
    const next = items.find((li) => itemTime(li) > at);
    timeline.insertBefore(activityItem(a), next || null);
  }
  placer.observe(timeline, { childList: true });
}
const priorityLevel = document.getElementById("priority-level");
function showPriority(priority, levels) {
  const dd = document.getElementById("conv-priority");
  dd.replaceChildren(el("span", { class: `pri pri-${priority}` }, priority));
  if (levels && document.activeElement !== priorityLevel) {
    priorityLevel.replaceChildren(...levels.map((l) => el("option", { value: l, selected: l === priority }, l)));
  }
}
const loadActivity = debounce(async () => {
  let data;
  try { data = await getJSON(`/agent/api/conversations/${cid}/activity`); } catch { return; }
  activity = data.entries;
  showPriority(data.priority, data.levels);
  placeActivity();
  document.body.dataset.activity = String(activity.length);
}, 100);
loadActivity();
if (socket) {
  socket.on("connect", loadActivity);
  socket.on("resync", loadActivity);
  socket.on("event", (e) => { if (e.conversation_id === cid) loadActivity(); });
}
document.getElementById("priority-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const out = document.getElementById("priority-error");
  const body = { priority: priorityLevel.value, reason: document.getElementById("priority-reason").value.trim() };
  if (!body.reason) { out.textContent = "Say why the priority changes."; return; }
  try {
    await post(`/agent/api/conversations/${cid}/priority`, body);
    out.textContent = "";
    document.getElementById("priority-reason").value = "";
    announce(`Priority set to ${body.priority}.`);
    loadActivity();
  } catch (err) { out.textContent = err.message; }
});
