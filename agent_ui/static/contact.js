// Contact profile: notes, and (supervisors) merging into another contact.
import { post, announce } from "./app.js";

const id = Number(document.body.dataset.contact);
document.getElementById("notes-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const status = document.getElementById("notes-status");
  try {
    await post(`/agent/api/contacts/${id}/notes`, { notes: document.getElementById("contact-notes").value });
    status.textContent = "Saved.";
  } catch (err) { status.textContent = err.message; }
});
const merge = document.getElementById("merge-form");
merge?.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const into = Number(document.getElementById("merge-into").value);
  const out = document.getElementById("merge-error");
  try {
    await post(`/agent/api/contacts/${id}/merge`, { into });
    announce("Merged.");
    location.assign(`/contacts/${into}`);
  } catch (err) { out.textContent = err.message; }
});
document.body.dataset.ready = "1";
