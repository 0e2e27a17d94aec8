// The live viewer: the customer's screen, figures, chat, control and input for the assigned
// staff member; the same page read-only for a compliance officer (data-role="observer": no
// chat input, no control, no input, no end). Protocol: protocol.js (mirrors
// sessions_app/protocol.py).
(function () {
  "use strict";

  const P = window.FernwartungProtocol;
  const root = document.getElementById("live");
  if (!root || !P) return;
  const staff = root.dataset.role === "staff";

  // Acknowledge drawn tiles every ackMs (and at once after a keyframe); pointer moves and the
  // wheel at most every moveMs (about 30 a second). Both slow down if the server allows fewer
  // messages per second than its default of 200 (welcome.max_messages_per_second, if sent).
  let ackMs = 100;
  let moveMs = 33;
  let ackTimer = 0;
  const RECONNECT_MAX_MS = 10000;

  const $ = function (id) { return document.getElementById(id); };
  const canvas = $("screen");
  const context = canvas.getContext("2d");
  const el = {
    connection: $("status-connection"), customer: $("status-customer"),
    control: $("status-control"), notice: $("live-notice"), empty: $("screen-empty"),
    observer: $("observer-notice"), observerNames: $("observer-names"),
    ended: $("ended-box"), endedReason: $("ended-reason"),
    updates: $("fig-updates"), kbits: $("fig-kbits"), latency: $("fig-latency"),
    keyframes: $("fig-keyframes"), size: $("fig-size"),
    chatLines: $("chat-lines"), chatForm: $("chat-form"), chatText: $("chat-text"),
    request: $("control-request"), withdraw: $("control-withdraw"),
    release: $("control-release"), endForm: $("end-form"),
  };

  function text(key) {
    const node = document.querySelector('#live-texts [data-text="' + key + '"]');
    return node ? node.textContent.trim() : "";
  }

  // --- State --------------------------------------------------------------------------------
  let ws = null;
  let open = false; // welcomed
  let ended = false;
  let retryMs = 1000;
  let heartbeatMs = 5000;
  let heartbeatTimer = 0;
  let drawing = Promise.resolve(); // tiles decode side by side but are drawn in order
  let haveKeyframe = false;
  let drawnSeq = -1;
  let ackedSeq = -1;
  let paused = false;
  let customerPresent = false;
  // While the customer is away: when the session ends as "connection lost" (performance.now()
  // milliseconds, from the server's grace_seconds, so the page's clock does not matter).
  let graceEndsAt = 0;
  let graceTimer = 0;
  const observers = new Map();
  const stats = { tiles: 0, bytes: 0, latency: 0, samples: 0, totalTiles: 0, keyframes: 0 };

  function setConnection(state) {
    root.dataset.connection = state;
    el.connection.textContent = text("connection-" + state);
    updateControls();
  }

  function setCustomer() {
    const lost = !customerPresent && graceEndsAt > 0 && !ended;
    const state = lost ? "lost" : !customerPresent ? "absent" : paused ? "paused" : "sharing";
    root.dataset.customer = state;
    if (lost) {
      const seconds = Math.max(0, Math.ceil((graceEndsAt - performance.now()) / 1000));
      root.dataset.graceSeconds = String(seconds);
      el.customer.textContent = text("customer-lost").replace("{seconds}", String(seconds));
    } else {
      delete root.dataset.graceSeconds;
      el.customer.textContent = text("customer-" + state);
    }
    updateControls();
  }

  // The grace period: count down from the server's deadline until the customer is back or the
  // session has ended (the server says which; the countdown only shows it).
  function setGrace(seconds) {
    clearInterval(graceTimer);
    graceTimer = 0;
    graceEndsAt = 0;
    if (typeof seconds === "number" && !ended) {
      graceEndsAt = performance.now() + seconds * 1000;
      graceTimer = setInterval(setCustomer, 1000);
    }
  }

  function setControl(state) {
    root.dataset.control = state;
    if (el.control) el.control.textContent = text("control-" + state);
    updateControls();
  }

  function updateControls() {
    if (!staff) return;
    const state = root.dataset.control;
    const usable = open && !ended;
    el.request.hidden = state === "waiting" || state === "granted";
    el.withdraw.hidden = state !== "waiting";
    el.release.hidden = state !== "granted";
    [el.request, el.withdraw, el.release].forEach(function (b) { b.disabled = !usable; });
    el.chatForm.querySelectorAll("input, button").forEach(function (n) { n.disabled = !usable; });
    el.endForm.querySelector("button").disabled = ended;
    canvas.classList.toggle("controlling", inputAllowed());
  }

  function notice(message) { el.notice.textContent = message || ""; }

  // --- The socket ---------------------------------------------------------------------------
  function sendJson(message) {
    if (!ws || ws.readyState !== WebSocket.OPEN || !open) return false;
    ws.send(JSON.stringify(message));
    return true;
  }

  function connect() {
    setConnection(ws === null && retryMs === 1000 ? "connecting" : "reconnecting");
    const socket = new WebSocket(P.socketUrl(root.dataset.socket));
    socket.binaryType = "arraybuffer";
    ws = socket;
    socket.onmessage = function (event) {
      if (ws !== socket) return;
      if (typeof event.data === "string") {
        let message;
        try { message = JSON.parse(event.data); } catch (error) { return; }
        handle(message);
      } else {
        onTile(event.data);
      }
    };
    socket.onclose = function (event) { if (ws === socket) closed(event); };
  }

  function closed(event) {
    open = false;
    clearInterval(heartbeatTimer);
    if (ended || event.code === P.CLOSE.ENDED) {
      showEnded("");
      return;
    }
    if (event.code === P.CLOSE.NOT_VERIFIED || event.code === P.CLOSE.FORBIDDEN) {
      setConnection("refused");
      notice(text("refused-" + event.code));
      return;
    }
    // Anything else (the network, a refused message): connect again, a little later each time.
    setConnection("reconnecting");
    setTimeout(connect, retryMs);
    retryMs = Math.min(RECONNECT_MAX_MS, retryMs * 2);
  }

  function showEnded(reason) {
    ended = true;
    open = false;
    clearInterval(heartbeatTimer);
    setGrace(null);
    if (root.dataset.customer === "lost") setCustomer();
    setConnection("ended");
    el.endedReason.textContent = reason || "";
    el.ended.hidden = false;
  }

  function handle(message) {
    switch (message.type) {
      case "welcome":
        open = true;
        retryMs = 1000;
        heartbeatMs = Math.max(1000, (message.heartbeat_seconds || 5) * 1000);
        limits(message.max_messages_per_second || 200);
        clearInterval(heartbeatTimer);
        heartbeatTimer = setInterval(function () { sendJson({ type: "heartbeat" }); }, heartbeatMs);
        paused = Boolean(message.paused);
        customerPresent = Boolean(message.customer_present);
        setGrace(customerPresent ? null : message.grace_seconds);
        el.chatLines.textContent = "";
        (message.chat || []).forEach(addChatLine);
        setConnection("open");
        setCustomer();
        setControl(message.control ? "granted" : "none");
        notice("");
        break;
      case "chat": addChatLine(message); break;
      case "peer": peer(message); break;
      case "sharing":
        paused = Boolean(message.paused);
        setCustomer();
        break;
      case "control_request": setControl("waiting"); break;
      case "control":
        if (message.granted) setControl("granted");
        else if (message.by === "staff") setControl("released");
        else setControl(root.dataset.control === "waiting" ? "denied" : "revoked");
        break;
      case "error": if (message.reason) notice(message.reason); break;
      case "ended": showEnded(message.reason || ""); break;
      default: break; // heartbeat, peer_refused
    }
  }

  function peer(message) {
    if (message.role === "customer") {
      customerPresent = Boolean(message.present);
      setGrace(customerPresent ? null : message.grace_seconds);
      if (customerPresent) {
        drawnSeq = -1; // a new connection numbers its tiles afresh
        ackedSeq = -1;
        haveKeyframe = false;
      }
      setCustomer();
    } else if (message.role === "observer") {
      const name = message.name || "";
      const count = (observers.get(name) || 0) + (message.present ? 1 : -1);
      if (count > 0) observers.set(name, count); else observers.delete(name);
      el.observerNames.textContent = Array.from(observers.keys()).join(", ");
      el.observer.hidden = observers.size === 0;
    }
  }

  // --- Tiles: decode, draw in order, acknowledge -------------------------------------------------
  function onTile(buffer) {
    let tile;
    try { tile = P.parseTile(buffer); } catch (error) { return; }
    stats.tiles += 1;
    stats.totalTiles += 1;
    stats.bytes += buffer.byteLength;
    stats.latency += Date.now() - tile.capturedMs;
    stats.samples += 1;
    if (tile.keyframe) stats.keyframes += 1;
    const decoded = createImageBitmap(new Blob([tile.payload], { type: tile.type }));
    drawing = drawing
      .then(function () { return decoded; })
      .then(function (bitmap) { draw(tile, bitmap); }, function () { drawnSeq = tile.seq; });
  }

  function draw(tile, bitmap) {
    if (tile.keyframe) {
      if (canvas.width !== tile.screenW || canvas.height !== tile.screenH) {
        canvas.width = tile.screenW;
        canvas.height = tile.screenH;
        el.size.textContent = tile.screenW + " × " + tile.screenH;
      }
      haveKeyframe = true;
      el.empty.hidden = true;
    }
    // A tile for another screen size, or before the first keyframe, waits for a keyframe.
    if (haveKeyframe && canvas.width === tile.screenW && canvas.height === tile.screenH) {
      context.drawImage(bitmap, tile.x, tile.y, tile.w, tile.h);
    }
    bitmap.close();
    drawnSeq = tile.seq;
    if (tile.keyframe) ack();
  }

  function ack() {
    if (drawnSeq >= 0 && drawnSeq !== ackedSeq && sendJson({ type: "ack", seq: drawnSeq })) {
      ackedSeq = drawnSeq;
    }
  }

  function limits(perSecond) {
    ackMs = Math.max(100, Math.ceil(1000 / (0.2 * perSecond)));
    moveMs = Math.max(33, Math.ceil(1000 / (0.3 * perSecond)));
    clearInterval(ackTimer);
    ackTimer = setInterval(ack, ackMs);
  }

  limits(200);

  setInterval(function () {
    el.updates.textContent = String(stats.tiles);
    el.kbits.textContent = String(Math.round(stats.bytes * 8 / 1000));
    el.latency.textContent = stats.samples
      ? Math.max(0, Math.round(stats.latency / stats.samples)) + " ms" : "–";
    el.keyframes.textContent = String(stats.keyframes);
    root.dataset.tiles = String(stats.totalTiles);
    root.dataset.keyframes = String(stats.keyframes);
    stats.tiles = stats.bytes = stats.latency = stats.samples = 0;
  }, 1000);

  // --- Chat ---------------------------------------------------------------------------------------
  function addChatLine(message) {
    const mine = staff && message.from === "staff";
    const who = mine ? text("you") : (message.name || text(message.from));
    el.chatLines.append(window.FernwartungChat.line(message, who));
    el.chatLines.scrollTop = el.chatLines.scrollHeight;
  }


  // --- Staff only: chat input, control, input, end ---------------------------------------------
  function inputAllowed() {
    return staff && open && !ended && root.dataset.control === "granted" && !paused;
  }

  function position(event) {
    const rect = canvas.getBoundingClientRect();
    if (!rect.width || !rect.height) return null;
    const clamp = function (v) { return Math.min(1, Math.max(0, v)); };
    return { x: clamp((event.clientX - rect.left) / rect.width),
             y: clamp((event.clientY - rect.top) / rect.height) };
  }

  function sendInput(fields) {
    if (!inputAllowed()) return;
    sendJson(Object.assign({ type: "input" }, fields));
  }

  if (staff) {
    el.chatForm.addEventListener("submit", function (event) {
      event.preventDefault();
      const value = el.chatText.value.trim().slice(0, P.CHAT_MAX_CHARS);
      if (value && sendJson({ type: "chat", text: value })) el.chatText.value = "";
    });
    el.request.addEventListener("click", function () { sendJson({ type: "control_request" }); });
    el.withdraw.addEventListener("click", function () { sendJson({ type: "control_release" }); });
    el.release.addEventListener("click", function () { sendJson({ type: "control_release" }); });
    el.endForm.addEventListener("submit", function (event) {
      if (!sendJson({ type: "end" })) return; // no socket: the form ends it the ordinary way
      event.preventDefault();
      el.endForm.querySelector("button").disabled = true;
      setTimeout(function () { if (!ended) el.endForm.submit(); }, 5000);
    });

    // Pointer moves and the wheel, at most ~30 per second; the latest position wins.
    let lastMove = 0;
    let pendingMove = null;
    let moveTimer = 0;
    let wheel = { dx: 0, dy: 0, at: null };
    let wheelTimer = 0;

    function flushMove() {
      moveTimer = 0;
      if (pendingMove) {
        lastMove = performance.now();
        sendInput({ event: "pointermove", x: pendingMove.x, y: pendingMove.y });
        pendingMove = null;
      }
    }

    canvas.addEventListener("pointermove", function (event) {
      if (!inputAllowed()) return;
      pendingMove = position(event);
      if (!pendingMove || moveTimer) return;
      const wait = moveMs - (performance.now() - lastMove);
      if (wait <= 0) flushMove(); else moveTimer = setTimeout(flushMove, wait);
    });
    canvas.addEventListener("pointerdown", function (event) {
      canvas.focus();
      if (!inputAllowed()) return;
      const at = position(event);
      if (!at) return;
      event.preventDefault();
      canvas.setPointerCapture(event.pointerId);
      flushMove();
      sendInput({ event: "pointerdown", x: at.x, y: at.y, button: event.button });
    });
    canvas.addEventListener("pointerup", function (event) {
      if (!inputAllowed()) return;
      const at = position(event);
      if (!at) return;
      flushMove();
      sendInput({ event: "pointerup", x: at.x, y: at.y, button: event.button });
    });
    canvas.addEventListener("contextmenu", function (event) {
      if (inputAllowed()) event.preventDefault();
    });
    canvas.addEventListener("wheel", function (event) {
      if (!inputAllowed()) return;
      event.preventDefault();
      const unit = event.deltaMode === 1 ? 16 : event.deltaMode === 2 ? 400 : 1;
      wheel.dx += event.deltaX * unit;
      wheel.dy += event.deltaY * unit;
      wheel.at = position(event);
      if (wheelTimer) return;
      wheelTimer = setTimeout(function () {
        wheelTimer = 0;
        if (wheel.at) {
          sendInput({ event: "wheel", x: wheel.at.x, y: wheel.at.y, dx: wheel.dx, dy: wheel.dy });
        }
        wheel = { dx: 0, dy: 0, at: null };
      }, moveMs);
    }, { passive: false });

    // Keys only while the screen has focus; Tab is kept so that the keyboard can leave it.
    function onKey(event) {
      if (!inputAllowed() || event.key === "Tab") return;
      event.preventDefault();
      sendInput({ event: event.type, key: event.key.slice(0, P.KEY_MAX_CHARS) });
    }
    canvas.addEventListener("keydown", onKey);
    canvas.addEventListener("keyup", onKey);
  }

  setCustomer();
  setControl("none");
  connect();
})();
