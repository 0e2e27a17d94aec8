// The live-session wire protocol, version 1, for the browser: one source for the customer's
// sharing page and the staff viewer. The constants MIRROR sessions_app/protocol.py (the
// server's single definition); change both together.
//
// Binary messages: a 28-byte header in network byte order (struct "!BBIQHHHHHHBB": version u8,
// kind u8, seq u32, captured_ms u64, screen_w u16, screen_h u16, x u16, y u16, w u16, h u16,
// codec u8, flags u8), then the encoded image. The image is drawn into the rectangle x, y, w, h
// of a screen_w × screen_h picture; it may have fewer pixels than w × h (a keyframe that had to
// be scaled down to fit the message limit) and is then stretched to fit.
(function (root) {
  "use strict";

  const CODECS = { 1: "image/jpeg", 2: "image/webp" };

  const P = {
    VERSION: 1,
    HEADER_BYTES: 28,
    KIND_TILE: 1,
    CODEC_JPEG: 1,
    CODEC_WEBP: 2,
    CODECS: CODECS,
    FLAG_KEYFRAME: 0x01, // a full-screen tile: after it, the viewer's picture is complete
    MAX_SCREEN_SIDE: 8192,
    CHAT_MAX_CHARS: 2000,
    KEY_MAX_CHARS: 32,
    INPUT_EVENTS: ["pointermove", "pointerdown", "pointerup", "wheel", "keydown", "keyup"],
    // Close codes (4000–4999 are the application's).
    CLOSE: {
      ENDED: 4000, // the session ended normally (by either side)
      NOT_VERIFIED: 4401, // staff socket: not signed in with both factors
      BAD_TOKEN: 4403, // customer token unknown, used, or for a session not active
      FORBIDDEN: 4404, // not the assigned staff member / no right to observe / no session
      TIMEOUT: 4408, // no hello or no heartbeat in time
      DUPLICATE: 4409, // a second customer connection while one is open
      TOO_LARGE: 4413, // a message above the limit
      BAD_MESSAGE: 4422, // unknown type, schema violation, bad header, tile outside screen
      NOT_ALLOWED: 4423, // input without control, screen while paused, anything after the end
      TOO_FAST: 4429, // too many messages per second
    },
  };

  const TWO_32 = 4294967296;

  function u16(name, value) {
    if (!(Number.isInteger(value) && value >= 0 && value <= 0xffff)) {
      throw new RangeError(name + " must be a 16-bit unsigned integer");
    }
    return value;
  }

  // The wire form of one tile: header + payload, as an ArrayBuffer for WebSocket.send.
  // tile: {seq, capturedMs, screenW, screenH, x, y, w, h, codec, keyframe}; payload: ArrayBuffer
  // or a typed array.
  P.packTile = function (tile, payload) {
    const bytes = payload instanceof ArrayBuffer ? new Uint8Array(payload)
      : new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength);
    const buffer = new ArrayBuffer(P.HEADER_BYTES + bytes.byteLength);
    const view = new DataView(buffer);
    const ms = Math.max(0, Math.floor(tile.capturedMs));
    view.setUint8(0, P.VERSION);
    view.setUint8(1, P.KIND_TILE);
    view.setUint32(2, tile.seq >>> 0);
    view.setUint32(6, Math.floor(ms / TWO_32)); // u64, big-endian: high word first
    view.setUint32(10, ms % TWO_32);
    view.setUint16(14, u16("screenW", tile.screenW));
    view.setUint16(16, u16("screenH", tile.screenH));
    view.setUint16(18, u16("x", tile.x));
    view.setUint16(20, u16("y", tile.y));
    view.setUint16(22, u16("w", tile.w));
    view.setUint16(24, u16("h", tile.h));
    view.setUint8(26, tile.codec);
    view.setUint8(27, tile.keyframe ? P.FLAG_KEYFRAME : 0);
    new Uint8Array(buffer, P.HEADER_BYTES).set(bytes);
    return buffer;
  };

  // Read and check one binary message, with the same rules as the server's parse_tile.
  // Returns the tile with `payload` (a Uint8Array view) and `type` (its MIME type); throws an
  // Error for a message the protocol refuses.
  P.parseTile = function (buffer) {
    if (!(buffer instanceof ArrayBuffer) || buffer.byteLength <= P.HEADER_BYTES) {
      throw new Error("binary message shorter than its header");
    }
    const view = new DataView(buffer);
    const version = view.getUint8(0);
    if (version !== P.VERSION) throw new Error("protocol version " + version);
    const kind = view.getUint8(1);
    if (kind !== P.KIND_TILE) throw new Error("unknown binary kind " + kind);
    const tile = {
      seq: view.getUint32(2),
      capturedMs: view.getUint32(6) * TWO_32 + view.getUint32(10),
      screenW: view.getUint16(14),
      screenH: view.getUint16(16),
      x: view.getUint16(18),
      y: view.getUint16(20),
      w: view.getUint16(22),
      h: view.getUint16(24),
      codec: view.getUint8(26),
      flags: view.getUint8(27),
    };
    tile.keyframe = Boolean(tile.flags & P.FLAG_KEYFRAME);
    tile.type = CODECS[tile.codec];
    if (!tile.type) throw new Error("unknown codec " + tile.codec);
    if (!(tile.screenW > 0 && tile.screenW <= P.MAX_SCREEN_SIDE &&
          tile.screenH > 0 && tile.screenH <= P.MAX_SCREEN_SIDE)) {
      throw new Error("screen size out of range");
    }
    if (tile.w === 0 || tile.h === 0 || tile.x + tile.w > tile.screenW ||
        tile.y + tile.h > tile.screenH) {
      throw new Error("tile outside the screen");
    }
    if (tile.keyframe && (tile.x !== 0 || tile.y !== 0 || tile.w !== tile.screenW ||
                          tile.h !== tile.screenH)) {
      throw new Error("a keyframe must cover the whole screen");
    }
    tile.payload = new Uint8Array(buffer, P.HEADER_BYTES);
    return tile;
  };

  // The codec byte for an encoded blob's MIME type (what the browser really produced).
  P.codecFor = function (mimeType) {
    return mimeType === "image/webp" ? P.CODEC_WEBP : P.CODEC_JPEG;
  };

  // ws:// or wss:// URL for a socket path on this page's host.
  P.socketUrl = function (path) {
    const scheme = root.location.protocol === "https:" ? "wss://" : "ws://";
    return scheme + root.location.host + path;
  };

  root.FernwartungProtocol = P;
})(typeof self !== "undefined" ? self : this);
