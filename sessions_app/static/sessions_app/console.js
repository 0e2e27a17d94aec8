// Staff console: live refresh over the console WebSocket (polling while it is down),
// key countdowns, confirmations, and no double submissions. The pages work without it.
(function () {
  "use strict";

  const POLL_MS = 15000;
  const CLOSE_NOT_VERIFIED = 4401; // docs/staff-signin.md
  const targets = Array.from(document.querySelectorAll("[data-refresh-url]"));
  const status = document.getElementById("live-status");
  let socket = null;
  let retryMs = 1000;

  function setStatus(live) {
    if (status) status.textContent = live ? status.dataset.on : status.dataset.off;
  }

  function refresh(target) {
    // Do not pull the form away from under a staff member who is typing in it.
    if (target.contains(document.activeElement) && document.activeElement.matches("input, select")) {
      return;
    }
    fetch(target.dataset.refreshUrl, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (response.redirected || response.status === 401 || response.status === 403) {
          window.location.reload(); // signed out or idle: show the sign-in page
          return null;
        }
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (html === null || html === undefined) return;
        target.innerHTML = html;
        afterRefresh();
      })
      .catch(function () { /* the next update or poll tries again */ });
  }

  function afterRefresh() {
    const panel = document.querySelector("[data-state]");
    const keyBox = document.getElementById("key-box");
    // Once the key is redeemed, cancelled or replaced, the big digits must go.
    if (panel && keyBox && panel.dataset.state !== "key_issued") keyBox.hidden = true;
    if (panel) {
      const waiting = panel.dataset.state === "customer_waiting";
      document.title = document.title.replace(/^● /, "");
      if (waiting) document.title = "● " + document.title;
    }
    startCountdowns();
  }

  function startCountdowns() {
    const now = Date.now();
    document.querySelectorAll("[data-seconds-left]").forEach(function (el) {
      if (!el.dataset.deadline) el.dataset.deadline = String(now + Number(el.dataset.secondsLeft) * 1000);
    });
  }

  function tick() {
    document.querySelectorAll("[data-deadline]").forEach(function (el) {
      const left = Math.max(0, Math.round((Number(el.dataset.deadline) - Date.now()) / 1000));
      if (left === 0) {
        el.textContent = el.dataset.expiredText;
        el.classList.add("expired");
        const box = el.closest("#key-box");
        if (box) box.classList.add("expired");
      } else {
        const m = Math.floor(left / 60), s = left % 60;
        el.textContent = "(" + m + ":" + String(s).padStart(2, "0") + ")";
      }
    });
  }

  function connect() {
    const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + window.location.host + "/ws/staff/console/");
    socket.onopen = function () { retryMs = 1000; setStatus(true); };
    socket.onmessage = function (event) {
      let message;
      try { message = JSON.parse(event.data); } catch (e) { return; }
      if (message.type !== "update") return;
      targets.forEach(function (target) {
        const only = target.dataset.session;
        if (!only || only === message.data.session) refresh(target);
      });
    };
    socket.onclose = function (event) {
      setStatus(false);
      if (event.code === CLOSE_NOT_VERIFIED) { window.location.reload(); return; }
      window.setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 30000);
    };
  }

  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      return;
    }
    // After this tick, so that the button's own value still goes with the form.
    window.setTimeout(function () {
      form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
    }, 0);
  });

  afterRefresh();
  window.setInterval(tick, 1000);
  tick();
  if (targets.length) {
    connect();
    // Polling also while the socket is up, more slowly: a change made by another process on
    // the in-memory channel layer of the embedded default (e.g. an expiry) sends no update.
    let polls = 0;
    window.setInterval(function () {
      polls += 1;
      const live = socket && socket.readyState === WebSocket.OPEN;
      if (!live || polls % 4 === 0) targets.forEach(refresh);
    }, POLL_MS);
  }
})();
