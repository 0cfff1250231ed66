// Escalations (supervisors): the list re-reads itself when a conversation is escalated.
import "./app.js";

document.addEventListener("od:escalated", () => {
  // the page is server-rendered: a fresh copy is the simplest complete re-read
  setTimeout(() => location.reload(), 300);
});
document.body.dataset.ready = "1";
