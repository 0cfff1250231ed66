// Who holds the conversation (issue 17): Accept an offer ("a") before its countdown runs
// out, Claim a conversation nobody holds ("c"), Take next from the queue ("N"), and the
// notice when an offer not accepted in time went back to the queue.
import { el, getJSON, post, socket, announce, shortcuts, me, debounce } from "./app.js";

const cid = Number(document.body.dataset.conversation || 0);
const acceptButton = document.getElementById("accept");
const claimButton = document.getElementById("claim");
const takeNext = document.getElementById("take-next");
const countdown = document.getElementById("accept-countdown");
let due = null;  // when the offer to me is taken back (ms, server clock)
let skew = 0;  // server clock minus ours, in ms

function notice(text) {
  let out = document.getElementById("ownership-notice");
  if (!out) {
    out = el("p", { id: "ownership-notice", class: "notice", role: "status" });
    document.querySelector("main")?.prepend(out);
  }
  out.textContent = text;
  out.hidden = false;
  announce(text);
}

function tick() {
  if (!countdown) return;
  if (due === null) { countdown.textContent = ""; return; }
  const left = Math.max(0, Math.ceil((due - Date.now() - skew) / 1000));
  countdown.textContent = `${left} s left to accept`;
}

const load = debounce(async () => {
  if (!cid || !acceptButton) return;
  let h;
  try { h = await getJSON(`/agent/api/conversations/${cid}/holder`); } catch { return; }
  skew = Date.parse(h.now) - Date.now();
  const offered = h.assignee_id === me && !h.accepted_at;
  due = offered && h.accept_due ? Date.parse(h.accept_due) : null;
  acceptButton.hidden = !offered;
  claimButton.hidden = h.assignee_id !== null || !["open", "pending", "on_hold"].includes(h.status);
  const holder = document.getElementById("holder");
  if (h.assignee_id === null) holder.textContent = "Nobody has this conversation.";
  else if (h.assignee_id === me) holder.textContent = offered ? "Offered to you." : "Yours.";
  else holder.textContent = `${h.assignee_name} has this conversation.`;
  tick();
}, 100);

async function own(what) {
  try {
    await post(`/agent/api/conversations/${cid}/${what}`);
    announce(what === "accept" ? "Accepted: this conversation is yours." : "Claimed: this conversation is yours.");
  } catch (err) {
    notice(err.message);
  }
  load();
}

async function next() {
  try {
    const taken = await post("/agent/api/queue/next");
    location.assign(`/conversations/${taken.conversation_id}`);
  } catch (err) {
    notice(err.message);
  }
}

if (acceptButton) {
  acceptButton.addEventListener("click", () => own("accept"));
  claimButton.addEventListener("click", () => own("claim"));
  shortcuts.set("a", () => { if (!acceptButton.hidden) own("accept"); });
  shortcuts.set("c", () => { if (!claimButton.hidden) own("claim"); });
  load();
  setInterval(tick, 1000);
}
if (takeNext) {
  takeNext.addEventListener("click", next);
  shortcuts.set("N", next);
}
if (socket) {
  socket.on("taken_back", (data) => {
    notice(`Conversation #${data.conversation_id} went back to the queue: it was not accepted in time.`);
    if (data.conversation_id === cid) load();
  });
  socket.on("event", (e) => { if (e.conversation_id === cid) load(); });
  socket.on("assigned", (data) => { if (data.conversation_id === cid) load(); });
  socket.on("resync", load);
}

// the queue: an Accept button on each of my cards that is still an offer
const mine = document.getElementById("mine");
async function markOffers() {
  for (const card of mine.querySelectorAll("li.card")) {
    const id = Number(card.dataset.id);
    let h;
    try { h = await getJSON(`/agent/api/conversations/${id}/holder`); } catch { continue; }
    const offered = h.assignee_id === me && !h.accepted_at;
    let button = card.querySelector("button.accept");
    if (offered && !button) {
      button = el("button", { type: "button", class: "accept primary" }, "Accept");
      button.addEventListener("click", async () => {
        try { await post(`/agent/api/conversations/${id}/accept`); announce("Accepted."); button.remove(); } catch (err) { notice(err.message); }
      });
      card.append(button);
    } else if (!offered && button) button.remove();
  }
}
if (mine) {
  const again = debounce(markOffers, 200);
  new MutationObserver(again).observe(mine, { childList: true });
  again();
}
