// The deploy page, live: on every event from /events, fetch this page again and put its
// <main> in place of ours (and once a second while a run is in progress). A lost stream
// reconnects by itself with Last-Event-ID; "reload" means events were missed, so we start a
// fresh stream after rendering anew. What someone is typing (a hold's reason) survives a
// render, and a form sent once cannot be sent again by a second click.
(() => {
  if (!window.EventSource || !window.fetch || !window.DOMParser) return;
  let busy = false;
  let again = false;
  async function render() {
    if (busy) { again = true; return; }
    // A form is on its way: the page it leads to replaces this one.
    if (document.querySelector("form[data-sent]")) return;
    busy = true;
    try {
      const reply = await fetch(location.href, { headers: { Accept: "text/html" } });
      if (reply.ok) {
        const page = new DOMParser().parseFromString(await reply.text(), "text/html");
        const fresh = page.querySelector("main");
        if (fresh) swap(document.querySelector("main"), fresh);
      }
    } catch (e) {
      // lever is restarting: the stream's reconnect brings the next render.
    } finally {
      busy = false;
      if (again) { again = false; render(); }
    }
  }
  function swap(old, fresh) {
    const focused = document.activeElement;
    for (const input of old.querySelectorAll("input[type=text][id]")) {
      const twin = fresh.querySelector("#" + CSS.escape(input.id));
      if (twin && input.value) twin.value = input.value;
    }
    old.replaceWith(fresh);
    if (focused && focused.id && old.contains(focused)) {
      const twin = document.getElementById(focused.id);
      if (twin) {
        twin.focus();
        if (twin.setSelectionRange) twin.setSelectionRange(twin.value.length, twin.value.length);
      }
    }
  }
  // Sent once: every button of a form being sent is disabled (the form key makes a second send
  // harmless anyway; this keeps it from happening).
  document.addEventListener("submit", (e) => {
    if (e.target.dataset.sent) { e.preventDefault(); return; }
    e.target.dataset.sent = "yes";
    setTimeout(() => { for (const b of e.target.querySelectorAll("button")) b.disabled = true; }, 0);
  });
  function follow() {
    const source = new EventSource("/events");
    for (const kind of ["hold", "unhold", "run", "step", "run_end", "log", "alert"]) {
      source.addEventListener(kind, (e) => {
        // How far this page has followed (what a reconnect resumes after).
        document.body.dataset.lastEvent = e.lastEventId;
        render();
      });
    }
    source.addEventListener("reload", () => { source.close(); render(); follow(); });
    source.addEventListener("open", () => { document.body.dataset.live = "on"; });
    source.addEventListener("error", () => { document.body.dataset.live = "off"; });
  }
  follow();
  // While a run is in progress, its clock and its step's last output line move without
  // events: render once a second then.
  setInterval(() => { if (document.querySelector(".active")) render(); }, 1000);
})();
