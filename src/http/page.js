// The deploy page, live: on every event from /events, fetch this page again and put its
// <main> in place of ours (and once a second while a run is in progress). A lost stream reconnects by itself with Last-Event-ID; "reload"
// means events were missed, so we start a fresh stream after rendering anew.
(() => {
  if (!window.EventSource || !window.fetch || !window.DOMParser) return;
  let busy = false;
  let again = false;
  async function render() {
    if (busy) { again = true; return; }
    busy = true;
    try {
      const reply = await fetch(location.href, { headers: { Accept: "text/html" } });
      if (reply.ok) {
        const page = new DOMParser().parseFromString(await reply.text(), "text/html");
        const fresh = page.querySelector("main");
        if (fresh) document.querySelector("main").replaceWith(fresh);
      }
    } catch (e) {
      // lever is restarting: the stream's reconnect brings the next render.
    } finally {
      busy = false;
      if (again) { again = false; render(); }
    }
  }
  function follow() {
    const source = new EventSource("/events");
    for (const kind of ["hold", "unhold", "run", "step", "run_end", "log"]) {
      source.addEventListener(kind, render);
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
