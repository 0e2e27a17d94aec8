// The customer's screen sharing, in the browser alone (view only, nothing to install).
// Protocol: sessions_app/static/sessions_app/protocol.js (mirrors sessions_app/protocol.py).
//
// Capture: the shared screen plays in a <video> that is never shown; about five times a second
// its picture is drawn to a canvas (the longer side at most 1920 pixels), compared pixel by
// pixel with the picture last sent, and only the 128×128 tiles that changed are sent as JPEG.
// A full-screen keyframe goes out at the start, when a viewer asks for one, after a pause,
// when the screen changes size, when too much changed at once, and at least every 10 seconds.
//
// This file also runs as its own clock, in a worker: a page in the background (the customer
// shares another window) has its timers slowed to once a second and later once a minute,
// which would starve the capture and the heartbeat; a dedicated worker's timers are not.
(function () {
  "use strict";

  if (typeof window === "undefined") {
    // The clock worker: a tick every `event.data` milliseconds; 0 stops it.
    let timer = 0;
    self.onmessage = function (event) {
      clearInterval(timer);
      if (event.data > 0) timer = setInterval(function () { self.postMessage(0); }, event.data);
    };
    return;
  }

  const P = window.FernwartungProtocol;
  const root = document.getElementById("share");
  if (!root || !P) return;
  const SCRIPT_URL = document.currentScript ? document.currentScript.src : "";

  const TILE = 128; // tile side in pixels
  const FRAME_MS = 200; // a picture every 200 ms: 5 per second
  const MAX_SIDE = 1920; // the picture's longer side, at most
  const TILE_QUALITY = 0.7;
  // Keyframe attempts until one fits the message limit: [scale, quality].
  const KEYFRAME_ATTEMPTS = [[1, 0.6], [1, 0.45], [1, 0.3], [0.5, 0.5], [0.25, 0.5]];
  const KEYFRAME_EVERY_MS = 10000;
  const MIME = "image/jpeg";
  // Share of the server's message rate we use for screen tiles (the rest: chat, heartbeats).
  const RATE_SHARE = 0.6;

  const $ = function (id) { return document.getElementById(id); };
  const el = {
    intro: $("share-intro"), start: $("share-start"), status: $("share-status"),
    problem: $("share-problem"), problemText: $("share-problem-text"),
    reconnect: $("share-reconnect"), live: $("share-live"),
    adviserPresent: $("adviser-present"), adviserAbsent: $("adviser-absent"),
    observer: $("observer-notice"), observerNames: $("observer-names"),
    prompt: $("control-prompt"), allow: $("control-allow"), deny: $("control-deny"),
    granted: $("control-granted"), revoke: $("control-revoke"),
    activity: $("control-activity"), activityWhat: $("control-activity-what"),
    chatLines: $("chat-lines"), chatForm: $("chat-form"), chatText: $("chat-text"),
    banner: $("share-banner"), pause: $("share-pause"), resume: $("share-resume"),
    again: $("share-again"), end: $("share-end"),
  };

  function text(key) {
    const node = document.querySelector('#share-texts [data-text="' + key + '"]');
    return node ? node.textContent.trim() : "";
  }

  // --- State ----------------------------------------------------------------------------
  let ws = null;
  let welcomed = false;
  let ended = false;
  let paused = false; // as told to the server: no tiles while true
  let stream = null;
  let video = null;
  let heartbeatMs = 5000;
  let maxBytes = 512 * 1024;
  let rate = { perSecond: 120, tokens: 120, stamp: performance.now() };
  // Tile numbers rise across reconnects and reloads of this page (the server's flow control
  // compares them): start from the clock, in milliseconds below 2^31; at most a few hundred
  // tiles a second never catch up with it, and a session never reaches 2^32.
  let seq = Date.now() % 2147483648;
  let lastHeartbeat = 0;
  let busy = false; // a picture is being compared and encoded
  let needKeyframe = true;
  let lastKeyframeAt = 0;
  let previous = null; // the pixels last sent (Uint32Array), to find what changed
  const frame = document.createElement("canvas");
  const frameContext = frame.getContext("2d", { willReadFrequently: true });
  const observers = new Map(); // name -> how many of their connections are open
  let clock = null;

  function setState(state) {
    root.dataset.state = state;
    const sharingLike = state === "sharing" || state === "paused" || state === "stopped";
    el.banner.hidden = !sharingLike;
    document.body.classList.toggle("is-sharing", sharingLike);
    el.banner.querySelectorAll("[data-when]").forEach(function (node) {
      node.hidden = node.dataset.when !== state;
    });
    el.pause.hidden = state !== "sharing";
    el.resume.hidden = state !== "paused";
    el.again.hidden = state !== "stopped";
    el.intro.hidden = state !== "idle";
    el.live.hidden = !(sharingLike);
    if (state === "sharing") say(text("sharing"));
    else if (state === "paused") say(text("paused"));
    else if (state === "stopped") say(text("stopped"));
  }

  function say(message) { el.status.textContent = message; }

  function showProblem(message, canReconnect) {
    el.problemText.textContent = message;
    el.reconnect.hidden = !canReconnect;
    el.problem.hidden = false;
  }

  function hideProblem() { el.problem.hidden = true; }

  // --- Sending ----------------------------------------------------------------------------
  function isOpen() { return ws !== null && ws.readyState === WebSocket.OPEN && welcomed; }

  // A token bucket like the server's, at a share of its rate: tiles never get us closed (4429).
  function refill() {
    const now = performance.now();
    rate.tokens = Math.min(rate.perSecond, rate.tokens + (now - rate.stamp) / 1000 * rate.perSecond);
    rate.stamp = now;
    return rate.tokens;
  }

  function takeToken() {
    refill();
    rate.tokens -= 1;
  }

  function sendJson(message) {
    if (!isOpen()) return false;
    takeToken();
    ws.send(JSON.stringify(message));
    return true;
  }

  function canSendScreen() { return isOpen() && !paused && !ended && stream !== null; }

  function encode(source, sx, sy, sw, sh, dw, dh, quality) {
    if (typeof OffscreenCanvas !== "undefined") {
      const canvas = new OffscreenCanvas(dw, dh);
      canvas.getContext("2d").drawImage(source, sx, sy, sw, sh, 0, 0, dw, dh);
      return canvas.convertToBlob({ type: MIME, quality: quality });
    }
    const canvas = document.createElement("canvas");
    canvas.width = dw;
    canvas.height = dh;
    canvas.getContext("2d").drawImage(source, sx, sy, sw, sh, 0, 0, dw, dh);
    return new Promise(function (resolve, reject) {
      canvas.toBlob(function (blob) {
        if (blob) resolve(blob); else reject(new Error("encoding failed"));
      }, MIME, quality);
    });
  }

  // One binary message; false if it could not go (paused, closed, too large).
  function sendTile(payload, type, rect, keyframe, capturedMs) {
    if (!canSendScreen() || payload.byteLength + P.HEADER_BYTES > maxBytes) return false;
    seq = (seq + 1) >>> 0;
    takeToken();
    ws.send(P.packTile({
      seq: seq, capturedMs: capturedMs, screenW: frame.width, screenH: frame.height,
      x: rect.x, y: rect.y, w: rect.w, h: rect.h, codec: P.codecFor(type), keyframe: keyframe,
    }, payload));
    return true;
  }

  async function sendKeyframe(capturedMs) {
    const w = frame.width;
    const h = frame.height;
    for (const [scale, quality] of KEYFRAME_ATTEMPTS) {
      const blob = await encode(frame, 0, 0, w, h, Math.max(1, Math.round(w * scale)),
                                Math.max(1, Math.round(h * scale)), quality);
      if (blob.size + P.HEADER_BYTES > maxBytes) continue;
      const payload = await blob.arrayBuffer();
      if (!sendTile(payload, blob.type, { x: 0, y: 0, w: w, h: h }, true, capturedMs)) return false;
      needKeyframe = false;
      lastKeyframeAt = Date.now();
      return true;
    }
    return false;
  }

  function changedTiles(now, before, width, height) {
    const changed = [];
    for (let ty = 0; ty < height; ty += TILE) {
      const th = Math.min(TILE, height - ty);
      for (let tx = 0; tx < width; tx += TILE) {
        const tw = Math.min(TILE, width - tx);
        let differs = false;
        for (let y = ty; y < ty + th && !differs; y++) {
          const end = y * width + tx + tw;
          for (let i = y * width + tx; i < end; i++) {
            if (now[i] !== before[i]) { differs = true; break; }
          }
        }
        if (differs) changed.push({ x: tx, y: ty, w: tw, h: th });
      }
    }
    return changed;
  }

  async function sendTiles(rects, capturedMs) {
    // Copy every tile out of the picture first, then encode them side by side.
    const blobs = await Promise.all(rects.map(function (r) {
      return encode(frame, r.x, r.y, r.w, r.h, r.w, r.h, TILE_QUALITY);
    }));
    const payloads = await Promise.all(blobs.map(function (b) { return b.arrayBuffer(); }));
    for (let i = 0; i < rects.length; i++) {
      if (!sendTile(payloads[i], blobs[i].type, rects[i], false, capturedMs)) return false;
    }
    return true;
  }

  async function captureFrame() {
    if (busy || !canSendScreen() || !video) return;
    if (ws.bufferedAmount > maxBytes) return; // the network is behind: skip this picture
    const vw = video.videoWidth;
    const vh = video.videoHeight;
    if (!vw || !vh) return;
    const scale = Math.min(1, MAX_SIDE / Math.max(vw, vh));
    const width = Math.max(1, Math.round(vw * scale));
    const height = Math.max(1, Math.round(vh * scale));
    busy = true;
    try {
      if (width !== frame.width || height !== frame.height) {
        frame.width = width;
        frame.height = height;
        previous = null;
      }
      frameContext.drawImage(video, 0, 0, width, height);
      const capturedMs = Date.now();
      const pixels = new Uint32Array(frameContext.getImageData(0, 0, width, height).data.buffer);
      if (capturedMs - lastKeyframeAt >= KEYFRAME_EVERY_MS) needKeyframe = true;
      let sent;
      if (needKeyframe || previous === null) {
        sent = await sendKeyframe(capturedMs);
      } else {
        const changed = changedTiles(pixels, previous, width, height);
        const all = Math.ceil(width / TILE) * Math.ceil(height / TILE);
        if (changed.length === 0) sent = true;
        // Too much changed for the message budget, or most of the screen: one keyframe instead.
        else if (changed.length > Math.min(refill() - 1, all / 2)) sent = await sendKeyframe(capturedMs);
        else sent = await sendTiles(changed, capturedMs);
      }
      if (sent) previous = pixels;
    } catch (error) {
      needKeyframe = true; // e.g. an encoding failed: start afresh with the next picture
    } finally {
      busy = false;
    }
  }

  // --- The clock: capture and heartbeats --------------------------------------------------
  function tick() {
    if (!isOpen()) return;
    const now = Date.now();
    if (now - lastHeartbeat >= heartbeatMs) {
      lastHeartbeat = now;
      sendJson({ type: "heartbeat" });
    }
    captureFrame();
  }

  function startClock() {
    stopClock();
    try {
      if (!SCRIPT_URL) throw new Error("no script URL");
      const worker = new Worker(SCRIPT_URL);
      worker.onmessage = tick;
      worker.postMessage(FRAME_MS);
      clock = { stop: function () { worker.postMessage(0); worker.terminate(); } };
    } catch (error) {
      const timer = setInterval(tick, FRAME_MS);
      clock = { stop: function () { clearInterval(timer); } };
    }
  }

  function stopClock() {
    if (clock) clock.stop();
    clock = null;
  }

  // --- The stream ---------------------------------------------------------------------------
  function useStream(newStream) {
    stream = newStream;
    const track = newStream.getVideoTracks()[0];
    if (track) {
      track.addEventListener("ended", function () {
        if (stream === newStream) stoppedInBrowser();
      });
    }
    video = document.createElement("video");
    video.muted = true;
    video.playsInline = true;
    video.srcObject = newStream;
    video.play().catch(function () { /* frames are drawn even if play() is refused */ });
    previous = null;
    needKeyframe = true;
  }

  function stopStream() {
    if (stream) stream.getTracks().forEach(function (track) { track.stop(); });
    stream = null;
    if (video) video.srcObject = null;
    video = null;
    previous = null;
  }

  function stoppedInBrowser() {
    // The customer stopped sharing in the browser's own bar: nothing more can be sent.
    stopStream();
    if (!paused) sendJson({ type: "pause" });
    paused = true;
    setState("stopped");
  }

  async function chooseScreen() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getDisplayMedia) {
      showProblem(text("unsupported"), root.dataset.state === "problem");
      return null;
    }
    try {
      return await navigator.mediaDevices.getDisplayMedia({ video: true, preferCurrentTab: true });
    } catch (error) {
      showProblem(text(error && error.name === "NotAllowedError" ? "not-chosen" : "unsupported"),
                  root.dataset.state === "problem");
      return null;
    }
  }

  // --- Start, reconnect, share again --------------------------------------------------------
  async function start() {
    hideProblem();
    el.start.disabled = true;
    el.reconnect.disabled = true;
    el.again.disabled = true;
    try {
      const chosen = await chooseScreen();
      if (!chosen) return;
      useStream(chosen);
      if (isOpen()) {
        // Share again on the open connection (after stopping in the browser's bar).
        sendJson({ type: "resume" });
        paused = false;
        setState("sharing");
      } else {
        await connect();
      }
    } finally {
      el.start.disabled = false;
      el.reconnect.disabled = false;
      el.again.disabled = false;
    }
  }

  function csrfToken() {
    const input = root.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  async function connect() {
    say(text("connecting"));
    root.dataset.state = "connecting";
    let data;
    try {
      const response = await fetch(root.dataset.tokenUrl, {
        method: "POST", credentials: "same-origin", cache: "no-store",
        headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
      });
      if (response.status === 409 || response.redirected) {
        // The session is no longer active (or this browser no longer bound): show the page.
        stopStream();
        window.location.reload();
        return;
      }
      if (!response.ok) throw new Error("token: HTTP " + response.status);
      data = await response.json();
    } catch (error) {
      stopStream();
      setState("idle");
      showProblem(text("token-failed"), false);
      return;
    }
    const socket = new WebSocket(P.socketUrl(data.socket));
    socket.binaryType = "arraybuffer";
    ws = socket;
    welcomed = false;
    socket.onopen = function () { socket.send(JSON.stringify({ type: "hello", token: data.token })); };
    socket.onmessage = function (event) {
      if (ws !== socket || typeof event.data !== "string") return;
      let message;
      try { message = JSON.parse(event.data); } catch (error) { return; }
      handle(message);
    };
    socket.onclose = function (event) { if (ws === socket) closed(event); };
  }

  function welcome(message) {
    welcomed = true;
    heartbeatMs = Math.max(1000, (message.heartbeat_seconds || 5) * 1000);
    maxBytes = message.max_message_bytes || maxBytes;
    const perSecond = Math.max(5, Math.floor((message.max_messages_per_second || 200) * RATE_SHARE));
    rate = { perSecond: perSecond, tokens: perSecond, stamp: performance.now() };
    lastHeartbeat = Date.now();
    el.chatLines.textContent = "";
    (message.chat || []).forEach(addChatLine);
    setControl(Boolean(message.control));
    if (message.paused) sendJson({ type: "resume" }); // the customer chose to share just now
    paused = false;
    needKeyframe = true;
    hideProblem();
    setState("sharing");
    startClock();
  }

  function handle(message) {
    switch (message.type) {
      case "welcome": welcome(message); break;
      case "chat": addChatLine(message); break;
      case "peer": peer(message); break;
      case "control_request": askForControl(); break;
      case "control": setControl(Boolean(message.granted)); break;
      case "sharing": paused = Boolean(message.paused) || stream === null; break;
      case "keyframe_request": needKeyframe = true; break;
      case "input": showActivity(message.event); break;
      case "error": if (message.code === 0 && message.reason) say(message.reason); break;
      case "ended":
        ended = true;
        stopStream();
        stopClock();
        window.location.reload(); // the page then says the session is over
        break;
      default: break; // heartbeat, peer_refused: nothing to show
    }
  }

  function closed(event) {
    stopClock();
    ws = null;
    welcomed = false;
    stopStream();
    el.prompt.hidden = true;
    if (ended || event.code === P.CLOSE.ENDED) {
      window.location.reload();
      return;
    }
    setState("problem");
    const reason = text("closed-" + event.code) || text("closed");
    // A second tab shares already: share from that one (the button stays, should it be closed).
    showProblem(event.code === P.CLOSE.DUPLICATE ? reason : reason + " " + text("reconnect"), true);
    // Unless the session ended meanwhile: then the page says so.
    fetch(root.dataset.statusUrl, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data && data.state !== "active") window.location.reload(); })
      .catch(function () { /* the reconnect button stays */ });
  }

  // --- People, control, chat ----------------------------------------------------------------
  function peer(message) {
    if (message.role === "staff") {
      el.adviserPresent.hidden = !message.present;
      el.adviserAbsent.hidden = Boolean(message.present);
    } else if (message.role === "observer") {
      const name = message.name || "";
      const count = (observers.get(name) || 0) + (message.present ? 1 : -1);
      if (count > 0) observers.set(name, count); else observers.delete(name);
      el.observerNames.textContent = Array.from(observers.keys()).join(", ");
      el.observer.hidden = observers.size === 0;
    }
  }

  function askForControl() {
    el.prompt.hidden = false;
    el.granted.hidden = true;
    if (!document.title.startsWith("● ")) document.title = "● " + document.title;
    el.prompt.focus();
  }

  function setControl(granted) {
    root.dataset.control = granted ? "true" : "false";
    el.prompt.hidden = true;
    el.granted.hidden = !granted;
    if (!granted) el.activity.hidden = true;
    document.title = document.title.replace(/^● /, "");
  }

  function answer(type) {
    const hadFocus = el.prompt.contains(document.activeElement);
    if (sendJson({ type: type })) el.prompt.hidden = true;
    if (hadFocus) el.chatText.focus();
  }

  function showActivity(event) {
    const kind = /^key/.test(event) ? "keyboard" : event === "wheel" ? "wheel" : "pointer";
    el.activityWhat.textContent = text(kind);
    el.activity.dataset.lastInput = event;
    el.activity.dataset.count = String(Number(el.activity.dataset.count || 0) + 1);
    el.activity.hidden = false;
  }

  function addChatLine(message) {
    const who = message.from === "customer" ? text("you") : (message.name || "");
    el.chatLines.append(window.FernwartungChat.line(message, who));
    el.chatLines.scrollTop = el.chatLines.scrollHeight;
  }


  // --- Buttons --------------------------------------------------------------------------------
  el.start.addEventListener("click", start);
  el.reconnect.addEventListener("click", start);
  el.again.addEventListener("click", start);
  el.pause.addEventListener("click", function () {
    if (sendJson({ type: "pause" })) { paused = true; setState("paused"); }
  });
  el.resume.addEventListener("click", function () {
    if (stream === null) { start(); return; }
    if (sendJson({ type: "resume" })) {
      paused = false;
      needKeyframe = true; // the viewer's picture is stale after a pause
      setState("sharing");
    }
  });
  el.end.addEventListener("click", function () {
    el.end.disabled = true;
    if (!sendJson({ type: "end" })) {
      endByForm();
      return;
    }
    // If the socket does not confirm in time, the header's form ends it the ordinary way.
    setTimeout(function () { if (!ended) endByForm(); }, 5000);
  });
  function endByForm() {
    const form = document.querySelector("form.end-session");
    if (form) form.submit();
  }
  el.allow.addEventListener("click", function () { answer("control_grant"); });
  el.deny.addEventListener("click", function () { answer("control_deny"); });
  el.revoke.addEventListener("click", function () { sendJson({ type: "control_revoke" }); });
  el.chatForm.addEventListener("submit", function (event) {
    event.preventDefault();
    const value = el.chatText.value.trim().slice(0, P.CHAT_MAX_CHARS);
    if (value && sendJson({ type: "chat", text: value })) el.chatText.value = "";
  });
  window.addEventListener("pagehide", function () { stopStream(); stopClock(); });

  setState("idle");
})();
