// The waiting room refreshes itself when the session's state changes (admitted, ended).
(function () {
  "use strict";
  const box = document.getElementById("session-state");
  if (!box) return;
  const known = box.dataset.state;
  function check() {
    fetch(box.dataset.statusUrl, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (data && data.state !== known) window.location.reload();
        else if (data && data.open) window.setTimeout(check, 2000);
      })
      .catch(function () { window.setTimeout(check, 5000); });
  }
  window.setTimeout(check, 2000);
})();
