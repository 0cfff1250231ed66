// The live queue: my conversations, the waiting queue (wait time, SLA countdown) and, for
// supervisors, agents with presence and load. Socket notices trigger one debounced re-read.
import { el, getJSON, socket, debounce, listNavigation, formatSeconds } from "./app.js";
import { selectCell, setupBulk } from "./bulk.js";

const sla = JSON.parse(document.body.dataset.sla || "{}");
const waitingBody = document.getElementById("waiting");
const mineList = document.getElementById("mine");
const agentsBody = document.getElementById("agents");
let skew = 0;  // server clock minus ours, in ms

function badge(channel) { return el("span", { class: `badge ch-${channel}` }, channel); }
function pri(priority) { return el("span", { class: `pri pri-${priority}` }, priority); }

function signature(r) { return JSON.stringify([r.priority, r.channel, r.contact_name, r.subject, r.skills, r.inbox, r.since]); }

function waitingRow(r) {
  const tr = el("tr", { dataset: { id: r.id, since: r.since || "", priority: r.priority, sig: signature(r) } });
  const name = el("td");
  name.append(el("a", { href: `/conversations/${r.id}` }, r.contact_name || "Unknown customer"));
  const skills = el("td");
  for (const s of r.skills) skills.append(el("span", { class: "skill" }, s));
  tr.append(el("td"), el("td"), name, el("td", { class: "subject" }, r.subject || ""), skills,
    el("td", {}, r.inbox), el("td", { class: "wait" }), el("td", { class: "sla-cell" }), selectCell(r.id));
  tr.children[0].append(pri(r.priority));
  tr.children[1].append(badge(r.channel));
  return tr;
}

function mineItem(r) {
  const li = el("li", { class: "card", dataset: { id: r.id } });
  const a = el("a", { class: "row-link", href: `/conversations/${r.id}` });
  const top = el("span", { class: "card-top" });
  top.append(badge(r.channel), " ", pri(r.priority), " ", el("span", { class: "status" }, r.status));
  a.append(top, el("span", { class: "card-name" }, r.contact_name || "Unknown customer"), el("span", { class: "card-subject" }, r.subject || ""));
  li.append(a);
  return li;
}

function agentRow(a) {
  const tr = el("tr", { dataset: { agent: a.id } });
  const who = el("td", {}, a.name);
  who.append(el("br"), el("small", { class: "muted" }, Object.entries(a.skills).map(([s, l]) => `${s}:${l}`).join(" ")));
  const st = el("td");
  st.append(el("span", { class: `dot ${a.presence}` }), " ", el("span", { class: "presence-text" }, a.presence));
  tr.append(who, st, el("td", {}, `${a.load} / ${a.capacity}`));
  return tr;
}

function render(data) {
  skew = Date.parse(data.now) - Date.now();
  // keyed: rows whose data did not change are kept (no rebuild, no re-measure of their text)
  const old = new Map([...waitingBody.rows].map((tr) => [tr.dataset.id, tr]));
  const rows = data.waiting.map((r) => {
    const kept = old.get(String(r.id));
    return kept && kept.dataset.sig === signature(r) ? kept : waitingRow(r);
  });
  let cursor = waitingBody.firstElementChild;
  for (const tr of rows) {
    if (tr === cursor) { cursor = cursor.nextElementSibling; continue; }
    waitingBody.insertBefore(tr, cursor);
  }
  while (cursor) { const next = cursor.nextElementSibling; cursor.remove(); cursor = next; }
  for (const tr of rows) visibility.observe(tr);
  document.getElementById("waiting-count").textContent = data.waiting.length;
  document.getElementById("waiting-empty").hidden = data.waiting.length > 0;
  const mine = document.createDocumentFragment();
  for (const r of data.mine) mine.append(mineItem(r));
  if (!data.mine.length) mine.append(el("li", { class: "empty" }, "Nothing assigned to you right now."));
  mineList.replaceChildren(mine);
  document.getElementById("mine-count").textContent = data.mine.length;
  if (agentsBody && data.agents) {
    const agents = document.createDocumentFragment();
    for (const a of data.agents) agents.append(agentRow(a));
    agentsBody.replaceChildren(agents);
  }
  tick();
  showBulk();
  document.body.dataset.updated = String(Date.now());
}

// wait times and SLA countdowns, once a second, text only, and only for rows on screen:
// with 1,000 rows waiting, touching every cell each second would re-lay out the table
const visible = new Set();
const visibility = new IntersectionObserver((entries) => {
  for (const e of entries) {
    if (e.isIntersecting) { visible.add(e.target); update(e.target, Date.now() + skew); } else visible.delete(e.target);
  }
}, { root: document.querySelector(".table-wrap"), rootMargin: "200px" });
for (const tr of waitingBody.rows) visibility.observe(tr);

function tick() {
  const now = Date.now() + skew;
  for (const tr of visible) { if (tr.isConnected) update(tr, now); else visible.delete(tr); }
}

function setText(cell, text) { if (cell.textContent !== text) cell.textContent = text; }

function update(tr, now) {
  {
    const since = Date.parse(tr.dataset.since);
    if (Number.isNaN(since)) return;
    const waited = (now - since) / 1000;
    setText(tr.cells[6], formatSeconds(waited));
    const target = sla[tr.dataset.priority];
    const cell = tr.cells[7];
    if (!target) { setText(cell, "—"); return; }
    const left = target - waited;
    const late = left < 0;
    setText(cell, late ? `late ${formatSeconds(-left)}` : formatSeconds(left));
    const cls = late ? "sla-cell sla late" : left < 60 ? "sla-cell sla soon" : "sla-cell sla ok";
    if (cell.className !== cls) cell.className = cls;
  }
}

const refresh = debounce(async () => {
  try { render(await getJSON("/agent/api/queue")); } catch { /* next event retries */ }
}, 150);

if (socket) {
  socket.on("event", refresh);
  socket.on("presence", refresh);
  socket.on("connect", refresh);
  socket.on("resync", refresh); // the server's bus was away: notices may have been missed
}
document.addEventListener("od:assigned", refresh);
setInterval(tick, 1000);
tick();
listNavigation(() => [...mineList.querySelectorAll("li.card"), ...waitingBody.rows]);
const showBulk = setupBulk(() => [...waitingBody.rows], waitingBody);
document.body.dataset.ready = "1";
