// The recordings admin: the player of an archived recording, and the progress of its exports.
//
// Player: fetches one decrypted segment at a time (docs/recording-format.md) and draws its
// screen records (the live protocol's tile messages, docs/protocol.md, parsed by protocol.js)
// onto a picture canvas; the visible canvas shows that picture with the reviewer's watermark on
// top, so that a screenshot carries it. A jump starts at the last keyframe at or before the
// chosen moment, draws quickly up to it and plays on; each jump fetches its segment with
// ?seek= so that the server audits it. Texts come from the page (json_script), not from here.
(function () {
  "use strict";

  const P = window.FernwartungProtocol;
  const root = document.getElementById("player");
  if (!root || !P) return;

  // The recording format's constants (recordings/format.py is the one definition).
  const SEGMENT_HEADER_BYTES = 88;
  const RECORD_HEADER_BYTES = 16;
  const RECORD_KEYFRAME = 1;
  const RECORD_TILE = 2;
  const FLAG_REPEATED = 0x01; // a keyframe repeated at a segment start (docs/recording-format.md)
  const MAGIC = [0x46, 0x57, 0x52, 0x45, 0x43, 0x0d, 0x0a, 0x1a]; // "FWREC\r\n\x1a"
  const TWO_32 = 4294967296;
  const SPEEDS = [0.5, 1, 2, 4, 8];

  const $ = function (id) { return document.getElementById(id); };
  const index = JSON.parse($("player-index").textContent);
  const texts = JSON.parse($("player-texts").textContent);
  const canvas = $("player-canvas");
  const context = canvas.getContext("2d");
  const picture = document.createElement("canvas"); // the screen as recorded, no watermark
  const pictureContext = picture.getContext("2d");
  const el = {
    play: $("player-play"), speed: $("player-speed"), seek: $("player-seek"),
    time: $("player-time"), status: $("player-status"), watermark: $("player-watermark"),
  };
  const duration = index.duration_us;
  const lang = document.documentElement.lang || undefined;
  const stamp = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "medium" });

  // --- State ---------------------------------------------------------------------------------
  let playing = false;
  let speed = 1;
  let position = 0; // µs of session time now shown
  let clockUs = 0; // the media clock: position = clockUs + (now - clockWall) * speed
  let clockWall = performance.now();
  let seeking = false;
  let waiting = false; // the next segment is not here yet: the clock holds
  let failed = false;
  let generation = 0; // a jump makes all earlier decodes and loads stale
  let cursor = { segment: 0, index: 0 }; // the next record to apply
  let drawing = Promise.resolve(); // tiles decode side by side but are drawn in order
  let haveKeyframe = false;
  let dirty = true;
  let watermarkText = "";
  let dragging = false;
  const parsed = new Map(); // segment number → records (ready)
  const loading = new Map(); // segment number → Promise of records
  const aborts = new Map(); // Promise of records → its fetch's AbortController

  function clock(us) {
    const seconds = Math.max(0, Math.floor(us / 1e6));
    const h = Math.floor(seconds / 3600);
    const m = Math.floor((seconds % 3600) / 60);
    const s = String(seconds % 60).padStart(2, "0");
    return h ? h + ":" + String(m).padStart(2, "0") + ":" + s : m + ":" + s;
  }

  function status(message) { el.status.textContent = message || ""; }

  function setState(state) { root.dataset.state = state; }

  // --- Segments: fetch, parse, keep only what is needed -----------------------------------------
  function parseSegment(buffer) {
    const view = new DataView(buffer);
    if (buffer.byteLength < SEGMENT_HEADER_BYTES ||
        MAGIC.some(function (byte, i) { return view.getUint8(i) !== byte; })) {
      throw new Error("not a recording segment");
    }
    const records = [];
    let offset = SEGMENT_HEADER_BYTES;
    while (offset + RECORD_HEADER_BYTES <= buffer.byteLength) {
      const type = view.getUint8(offset);
      const flags = view.getUint8(offset + 2);
      const length = view.getUint32(offset + 4);
      const at = view.getUint32(offset + 8) * TWO_32 + view.getUint32(offset + 12);
      const start = offset + RECORD_HEADER_BYTES;
      if (start + length > buffer.byteLength) break; // cut by a crash: the rest is not there
      if (type === RECORD_KEYFRAME || type === RECORD_TILE) {
        records.push({ type: type, at: at, offset: offset, start: start, length: length,
                       buffer: buffer, repeated: (flags & FLAG_REPEATED) !== 0 });
      }
      offset = start + length;
    }
    return records;
  }

  function load(number, jump) {
    if (!jump && loading.has(number)) return loading.get(number);
    let url = index.segments[number].url;
    if (jump) url += "?seek=" + Math.round(jump.to) + "&from=" + Math.round(jump.from);
    const controller = new AbortController();
    const promise = fetch(url, { credentials: "same-origin", cache: "no-store",
                                 signal: controller.signal })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.arrayBuffer();
      })
      .then(parseSegment)
      .then(function (records) {
        if (loading.get(number) === promise) parsed.set(number, records);
        return records;
      });
    loading.set(number, promise);
    aborts.set(promise, controller);
    promise.catch(function () {
      if (loading.get(number) === promise) loading.delete(number);
    }).then(function () { aborts.delete(promise); });
    return promise;
  }

  function prefetch(number) {
    if (number < index.segments.length && !loading.has(number)) {
      load(number).catch(function () { /* played later: tried again then */ });
    }
  }

  function forgetBefore(number) {
    Array.from(loading.keys()).forEach(function (n) {
      if (n < number) { loading.delete(n); parsed.delete(n); }
    });
  }

  function forgetAll() {
    aborts.forEach(function (controller) { controller.abort(); });
    aborts.clear();
    loading.clear();
    parsed.clear();
  }

  // --- Drawing ------------------------------------------------------------------------------
  function apply(record) {
    let tile;
    try {
      tile = P.parseTile(record.buffer.slice(record.start, record.start + record.length));
    } catch (error) { return; }
    const gen = generation;
    const decoded = createImageBitmap(new Blob([tile.payload], { type: tile.type }));
    drawing = drawing
      .then(function () { return decoded; })
      .then(function (bitmap) {
        if (gen === generation) drawTile(tile, bitmap, record.repeated);
        bitmap.close();
      }, function () { /* an image that does not decode is skipped */ });
  }

  function drawTile(tile, bitmap, repeated) {
    // A keyframe repeated at a segment start is older than the picture drawn since: it only
    // serves when there is no picture yet.
    if (repeated && haveKeyframe && picture.width === tile.screenW &&
        picture.height === tile.screenH) return;
    if (tile.keyframe) {
      if (picture.width !== tile.screenW || picture.height !== tile.screenH) {
        picture.width = canvas.width = tile.screenW;
        picture.height = canvas.height = tile.screenH;
      }
      haveKeyframe = true;
    }
    // Before the first keyframe, or for another screen size, a tile waits for a keyframe.
    if (haveKeyframe && picture.width === tile.screenW && picture.height === tile.screenH) {
      pictureContext.drawImage(bitmap, tile.x, tile.y, tile.w, tile.h);
      dirty = true;
    }
  }

  function clearPicture() {
    haveKeyframe = false;
    pictureContext.fillStyle = "#000";
    pictureContext.fillRect(0, 0, picture.width, picture.height);
    dirty = true;
  }

  // Apply every record up to `target`; false when the next segment is still on its way.
  function advance(target) {
    for (;;) {
      const number = cursor.segment;
      if (number >= index.segments.length) return true;
      const records = parsed.get(number);
      if (!records) {
        const gen = generation;
        load(number).then(function () {
          if (gen === generation) resume();
        }, function () {
          if (gen === generation) fail();
        });
        return false;
      }
      if (cursor.index >= records.length) {
        cursor = { segment: number + 1, index: 0 };
        forgetBefore(cursor.segment);
        prefetch(cursor.segment + 1);
        continue;
      }
      const record = records[cursor.index];
      if (record.at > target) return true;
      apply(record);
      cursor.index += 1;
    }
  }

  function resume() {
    waiting = false;
    rebase(performance.now());
    if (!failed && !seeking) status("");
  }

  function fail() {
    failed = true;
    playing = false;
    setState("failed");
    status(texts.failed);
    updateButton();
  }

  // The reviewer's name and the time, repeated diagonally across the picture, semi-transparent.
  function drawWatermark() {
    const w = canvas.width;
    const h = canvas.height;
    const size = Math.max(12, Math.round(Math.min(w, h) / 18));
    context.save();
    context.font = "600 " + size + "px system-ui, sans-serif";
    context.textAlign = "center";
    context.textBaseline = "middle";
    context.translate(w / 2, h / 2);
    context.rotate(-Math.PI / 7);
    const gap = context.measureText(watermarkText).width + size * 3;
    const reach = Math.hypot(w, h) / 2 + gap;
    context.lineWidth = Math.max(1, size / 10);
    context.strokeStyle = "rgba(0, 0, 0, 0.28)";
    context.fillStyle = "rgba(255, 255, 255, 0.32)";
    let row = 0;
    for (let y = -reach; y <= reach; y += size * 4, row += 1) {
      for (let x = -reach + (row % 2) * gap / 2; x <= reach; x += gap) {
        context.strokeText(watermarkText, x, y);
        context.fillText(watermarkText, x, y);
      }
    }
    context.restore();
  }

  function render() {
    context.fillStyle = "#000";
    context.fillRect(0, 0, canvas.width, canvas.height);
    if (picture.width === canvas.width && picture.height === canvas.height) {
      context.drawImage(picture, 0, 0);
    }
    drawWatermark();
    dirty = false;
  }

  function updateWatermark() {
    const text = texts.viewer + " · " + stamp.format(new Date());
    if (text !== watermarkText) {
      watermarkText = text;
      canvas.dataset.watermark = text;
      el.watermark.textContent = text;
      dirty = true;
    }
  }

  // --- Playing, pausing, speed ----------------------------------------------------------------
  function rebase(now) {
    clockUs = position;
    clockWall = now;
  }

  function updateButton() {
    el.play.textContent = playing ? texts.pause : texts.play;
    el.play.disabled = failed;
  }

  function play() {
    if (failed) return;
    if (position >= duration) {
      playing = true;
      jump(0);
    } else {
      playing = true;
      rebase(performance.now());
    }
    setState("playing");
    status("");
    updateButton();
  }

  function pause() {
    playing = false;
    setState("paused");
    updateButton();
  }

  function setSpeed(value) {
    rebase(performance.now());
    speed = SPEEDS.indexOf(value) >= 0 ? value : 1;
    root.dataset.speed = String(speed);
  }

  function lastKeyframe(at) {
    let found = null;
    for (const keyframe of index.keyframes) {
      if (keyframe.at_us <= at) found = keyframe; else break;
    }
    return found;
  }

  // Jump to `to` (µs): from the last keyframe at or before it, drawing quickly up to it.
  function jump(to) {
    to = Math.max(0, Math.min(duration, Math.round(to)));
    const from = position;
    generation += 1;
    const gen = generation;
    drawing = Promise.resolve();
    seeking = true;
    waiting = false;
    failed = false;
    position = to;
    showPosition();
    forgetAll(); // the server counts segments in order; after a jump they are fetched anew
    const keyframe = lastKeyframe(to);
    const number = keyframe ? keyframe.segment : 0;
    const offset = keyframe ? keyframe.offset : SEGMENT_HEADER_BYTES;
    status(texts.loading);
    return load(number, { to: to, from: from }).then(function (records) {
      if (gen !== generation) return;
      clearPicture();
      const first = records.findIndex(function (record) { return record.offset >= offset; });
      cursor = { segment: number, index: first < 0 ? records.length : first };
      prefetch(number + 1);
      seeking = false;
      waiting = !advance(to);
      rebase(performance.now());
      status(waiting ? texts.loading : "");
      setState(playing ? "playing" : "paused");
      updateButton();
    }, function () {
      if (gen === generation) { seeking = false; fail(); }
    });
  }

  function showPosition() {
    root.dataset.positionUs = String(Math.round(position));
    const label = clock(position);
    if (el.time.textContent !== label) el.time.textContent = label;
    if (!dragging) {
      el.seek.value = String(Math.round(position));
      el.seek.setAttribute("aria-valuetext", label);
    }
  }

  function frame(now) {
    if (playing && !seeking && !waiting && !failed) {
      position = Math.min(duration, clockUs + (now - clockWall) * 1000 * speed);
      if (!advance(position)) {
        waiting = true;
        status(texts.loading);
      }
      if (position >= duration && !waiting) {
        position = duration;
        playing = false;
        setState("ended");
        status(texts.ended);
        updateButton();
      }
    } else if (waiting) {
      rebase(now); // the clock holds while a segment is on its way
    }
    showPosition();
    if (dirty) render();
    requestAnimationFrame(frame);
  }

  // --- Controls -----------------------------------------------------------------------------
  el.play.addEventListener("click", function () { if (playing) pause(); else play(); });
  el.speed.addEventListener("change", function () { setSpeed(Number(el.speed.value)); });
  el.seek.addEventListener("input", function () {
    dragging = true;
    el.seek.setAttribute("aria-valuetext", clock(Number(el.seek.value)));
  });
  el.seek.addEventListener("change", function () {
    dragging = false;
    jump(Number(el.seek.value));
  });
  document.querySelectorAll("#player-timeline-list .timeline-entry").forEach(function (entry) {
    entry.addEventListener("click", function () { jump(Number(entry.dataset.atUs)); });
  });

  // --- Start: the first segment, the first picture, paused -------------------------------------
  updateWatermark();
  setInterval(updateWatermark, 1000);
  picture.width = canvas.width;
  picture.height = canvas.height;
  clearPicture();
  requestAnimationFrame(frame);
  if (!index.segments.length) { fail(); return; }
  const startGeneration = generation;
  load(0).then(function () {
    if (startGeneration !== generation) return; // a jump came first
    cursor = { segment: 0, index: 0 };
    prefetch(1);
    advance(0);
    // Decoding is asynchronous: "paused" promises the first picture, so wait until it is drawn
    // (on a busy machine the page was otherwise "paused" on the empty 640×360 canvas).
    return drawing.then(function () {
      if (startGeneration !== generation) return;
      if (dirty) render();
      setState("paused");
      status("");
      el.play.disabled = false;
      updateButton();
    });
  }).catch(fail);
})();

// The recording's page: while an export is queued or running, poll its progress every 2 s.
(function () {
  "use strict";

  const panel = document.getElementById("recording-exports");
  if (!panel || !panel.dataset.pollUrl) return;
  const UNFINISHED = ["queued", "running"];

  function poll() {
    fetch(panel.dataset.pollUrl, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (!data) return;
        let finished = false;
        let unfinished = false;
        data.exports.forEach(function (exp) {
          const row = panel.querySelector('tr[data-export="' + exp.id + '"]');
          if (!row) return;
          if (UNFINISHED.indexOf(exp.state) < 0) {
            if (UNFINISHED.indexOf(row.dataset.state) >= 0) finished = true;
            return;
          }
          unfinished = true;
          row.dataset.state = exp.state;
          const state = row.querySelector(".export-state");
          const bar = row.querySelector("progress");
          const percent = row.querySelector(".export-progress");
          if (state) state.textContent = exp.state_label;
          if (bar) bar.value = exp.progress;
          if (percent) percent.textContent = exp.progress + " %";
        });
        // A finished export gets its hash and download link: the page shows them.
        if (finished) window.location.reload();
        else if (unfinished) setTimeout(poll, 2000);
      }, function () { setTimeout(poll, 5000); });
  }

  setTimeout(poll, 2000);
})();
