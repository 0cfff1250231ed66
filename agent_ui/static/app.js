// Shared by every workspace page: CSRF-aware fetch, the /agent socket, presence,
// assignment notifications, keyboard shortcuts and the help overlay.
// Customer-written text is only ever set with textContent.

const meta = document.querySelector('meta[name="csrf-token"]');
export const csrf = meta ? meta.content : "";
export const me = Number(document.body.dataset.me || 0);

export function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

export async function getJSON(path) {
  const resp = await fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (resp.status === 401) { location.assign("/login?next=" + encodeURIComponent(location.pathname)); throw new Error("signed out"); }
  if (!resp.ok) throw new Error(`${resp.status}`);
  return resp.json();
}

// An Idempotency-Key for one action attempt (crypto.getRandomValues works on plain http too).
export function actionKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// POST an action. Every action carries an Idempotency-Key: `key` when the caller keeps one
// across attempts (a resend of the same reply), else a new one for this call. A dropped
// connection or a 503 is retried with the same key, so the server does it at most once.
export async function post(path, body = {}, key = actionKey()) {
  let resp = null;
  for (let attempt = 0; ; attempt++) {
    try {
      resp = await fetch(path, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, Accept: "application/json", "Idempotency-Key": key },
        body: JSON.stringify(body),
      });
    } catch {
      resp = null;
      if (attempt >= 2) throw new Error("the connection dropped; send again (it will not be sent twice)");
    }
    if (resp && (resp.status !== 503 || attempt >= 2)) break;
    await new Promise((done) => setTimeout(done, 1000 * (attempt + 1)));
  }
  let data = {};
  try { data = await resp.json(); } catch { /* empty body */ }
  if (resp.status === 401) { location.assign("/login"); throw new Error("signed out"); }
  if (!resp.ok) throw new Error((data.error && data.error.message) || `request failed (${resp.status})`);
  return data;
}

export function announce(text) {
  const live = document.getElementById("live-status");
  if (!live) return;
  live.textContent = text;
  live.classList.add("show");
  clearTimeout(announce.timer);
  announce.timer = setTimeout(() => live.classList.remove("show"), 6000);
}

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

// -- the socket -------------------------------------------------------------------------
export const socket = window.io ? window.io("/agent", { transports: ["websocket"], withCredentials: true }) : null;
if (socket) {
  socket.on("connect", () => document.body.classList.remove("offline-link"));
  socket.on("disconnect", () => document.body.classList.add("offline-link"));
  socket.on("connect_error", (err) => {
    document.body.classList.add("offline-link");
    if (err && err.message === "sign in first") location.assign("/login");
  });
}

// -- presence ---------------------------------------------------------------------------
const presence = document.getElementById("presence");
if (presence) {
  presence.addEventListener("change", async () => {
    const wanted = presence.value;
    try {
      await post("/agent/api/presence", { presence: wanted });
      presence.dataset.current = wanted;
      announce(`You are ${wanted}.`);
    } catch (err) {
      presence.value = presence.dataset.current;
      announce(`Could not change status: ${err.message}`);
    }
  });
  socket && socket.on("presence", (p) => {
    if (p.agent_id === me && presence.value !== p.presence) {
      presence.value = p.presence;
      presence.dataset.current = p.presence;
      if (p.presence === "offline") announce("You were set offline.");
    }
  });
}

// -- assignment notifications -----------------------------------------------------------
function beep() {
  try {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    const ctx = beep.ctx || (beep.ctx = new Ctx());
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.frequency.value = 880;
    gain.gain.setValueAtTime(0.15, ctx.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.001, ctx.currentTime + 0.4);
    osc.connect(gain).connect(ctx.destination);
    osc.start();
    osc.stop(ctx.currentTime + 0.4);
  } catch { /* sound is a nicety */ }
}

document.addEventListener("click", () => {
  if ("Notification" in window && Notification.permission === "default") Notification.requestPermission();
}, { once: true });

socket && socket.on("assigned", (data) => {
  const text = `Conversation #${data.conversation_id} was assigned to you.`;
  announce(text);
  beep();
  document.dispatchEvent(new CustomEvent("od:assigned", { detail: data }));
  if ("Notification" in window && Notification.permission === "granted" && document.hidden) {
    const n = new Notification("New conversation", { body: text, tag: `conv-${data.conversation_id}` });
    n.onclick = () => { window.focus(); location.assign(`/conversations/${data.conversation_id}`); };
  }
});

// supervisors: a conversation was escalated (an SLA breach or an agent asking for help)
socket && socket.on("escalated", (data) => {
  const why = data.reason ? `: ${data.reason}` : "";
  announce(`Conversation #${data.conversation_id} was escalated${why}.`);
  document.dispatchEvent(new CustomEvent("od:escalated", { detail: data }));
});

// -- help overlay and shortcuts ---------------------------------------------------------
const help = document.getElementById("help");
function toggleHelp(show) {
  if (!help) return;
  const open = show === undefined ? help.hidden : show;
  help.hidden = !open;
  if (open) document.getElementById("help-close").focus();
}
document.getElementById("help-button")?.addEventListener("click", () => toggleHelp(true));
document.getElementById("help-close")?.addEventListener("click", () => toggleHelp(false));

export const shortcuts = new Map();  // key -> handler, filled by page modules
let pending = "";
function typingInField(target) {
  return target instanceof HTMLElement && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
}
document.addEventListener("keydown", (ev) => {
  if (ev.key === "Escape") { toggleHelp(false); document.dispatchEvent(new CustomEvent("od:escape")); return; }
  if (ev.ctrlKey || ev.metaKey || ev.altKey || typingInField(ev.target)) return;
  if (ev.key === "?") { ev.preventDefault(); toggleHelp(); return; }
  if (pending === "g" && ev.key === "q") { pending = ""; location.assign("/queue"); return; }
  pending = ev.key === "g" ? "g" : "";
  if (ev.key === "n") { ev.preventDefault(); openNextMine(); return; }
  const handler = shortcuts.get(ev.key);
  if (handler) { ev.preventDefault(); handler(ev); }
});

async function openNextMine() {
  const data = await getJSON("/agent/api/queue");
  const current = Number(document.body.dataset.conversation || 0);
  const ids = data.mine.map((r) => r.id);
  const next = ids.find((id) => id !== current && (current === 0 || ids.indexOf(id) > ids.indexOf(current))) || ids.find((id) => id !== current);
  if (next) location.assign(`/conversations/${next}`);
  else announce("No other conversation is assigned to you.");
}

// j/k move through a list of links; Enter opens the selected one
export function listNavigation(getRows) {
  let index = -1;
  const move = (delta) => {
    const rows = getRows();
    if (!rows.length) return;
    rows[index]?.classList.remove("selected");
    index = Math.max(0, Math.min(rows.length - 1, index + delta));
    const row = rows[index];
    row.classList.add("selected");
    const link = row.querySelector("a");
    (link || row).focus();
    row.scrollIntoView({ block: "nearest" });
  };
  shortcuts.set("j", () => move(1));
  shortcuts.set("k", () => move(-1));
}

export function formatSeconds(s) {
  s = Math.max(0, Math.floor(s));
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}
