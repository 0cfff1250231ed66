// Multi-select in the waiting queue and the bulk bar: checkboxes, shift-click ranges,
// "x" toggles the row j/k moved to; the chosen action goes to /agent/api/conversations/bulk
// (one transaction per conversation on the server) and the bar shows the result per item.
import { el, post, shortcuts } from "./app.js";

const chosen = new Set();  // conversation ids (strings), kept across live re-renders
let anchor = null;  // the last row clicked: the start of a shift-click range
let rowsOf = () => [];

const bar = document.getElementById("bulk-bar");
const count = document.getElementById("bulk-count");
const result = document.getElementById("bulk-result");

export function isChosen(id) { return chosen.has(String(id)); }

export function selectCell(id) {
  const box = el("input", { type: "checkbox", class: "bulk-pick", "aria-label": `select conversation ${id}` });
  box.checked = isChosen(id);
  const td = el("td", { class: "pick" });
  td.append(box);
  return td;
}

function show() {
  for (const tr of rowsOf()) {
    const box = tr.querySelector("input.bulk-pick");
    if (box) box.checked = chosen.has(tr.dataset.id);
  }
  // ids no longer in the queue drop out of the selection
  const present = new Set(rowsOf().map((tr) => tr.dataset.id));
  for (const id of [...chosen]) if (!present.has(id)) chosen.delete(id);
  count.textContent = `${chosen.size} selected`;
  bar.hidden = chosen.size === 0 && !result.textContent;
}

function toggle(tr, on) {
  if (on) chosen.add(tr.dataset.id); else chosen.delete(tr.dataset.id);
}

function onClick(ev) {
  const box = ev.target.closest("input.bulk-pick");
  if (!box) return;
  const tr = box.closest("tr");
  const rows = rowsOf();
  if (ev.shiftKey && anchor && rows.includes(anchor)) {
    const [from, to] = [rows.indexOf(anchor), rows.indexOf(tr)].sort((a, b) => a - b);
    for (const row of rows.slice(from, to + 1)) toggle(row, box.checked);
  } else {
    toggle(tr, box.checked);
  }
  anchor = tr;
  show();
}

function body(action) {
  const value = document.getElementById("bulk-value").value.trim();
  const reason = document.getElementById("bulk-reason").value.trim() || undefined;
  const ids = [...chosen].map(Number);
  const me = Number(document.body.dataset.me);
  switch (action) {
    case "assign": return { ids, action, agent_id: value ? Number(value) : me, reason };
    case "transfer": return value.startsWith("team:") ? { ids, action, team: value.slice(5), reason } : { ids, action, inbox: value, reason };
    case "tag": return { ids, action, tags: value.split(",").map((t) => t.trim()).filter(Boolean) };
    case "status": return { ids, action, status: value, reason };
    case "priority": return { ids, action, priority: value, reason };
    case "snooze": return { ids, action, until: new Date(Date.now() + Number(value || 1) * 3600_000).toISOString(), reason };
    default: return { ids, action, reason };
  }
}

function summary(answer) {
  const failed = answer.results.filter((r) => !r.ok);
  const lines = [`${answer.ok} done, ${answer.failed} refused`];
  for (const r of failed.slice(0, 20)) lines.push(`#${r.id}: ${r.message}`);
  if (failed.length > 20) lines.push(`…and ${failed.length - 20} more`);
  return lines;
}

async function apply() {
  const action = document.getElementById("bulk-action").value;
  result.replaceChildren();
  try {
    const answer = await post("/agent/api/conversations/bulk", body(action));
    for (const line of summary(answer)) result.append(el("li", {}, line));
    document.body.dataset.bulkDone = String(answer.ok);
    for (const r of answer.results) if (r.ok) chosen.delete(String(r.id));
    document.dispatchEvent(new CustomEvent("od:assigned"));  // re-read the queue
  } catch (err) {
    result.append(el("li", { class: "error" }, err.message));
  }
  show();
}

export function setupBulk(getRows, tbody) {
  rowsOf = getRows;
  tbody.addEventListener("click", onClick);
  document.getElementById("bulk-apply").addEventListener("click", apply);
  document.getElementById("bulk-clear").addEventListener("click", () => { chosen.clear(); result.replaceChildren(); show(); });
  document.getElementById("bulk-all").addEventListener("click", () => { for (const tr of rowsOf()) chosen.add(tr.dataset.id); show(); });
  shortcuts.set("x", () => {
    const tr = rowsOf().find((row) => row.classList.contains("selected"));
    if (!tr) return;
    toggle(tr, !chosen.has(tr.dataset.id));
    anchor = tr;
    show();
  });
  show();
  return show;
}
