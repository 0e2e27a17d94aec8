"""Benchmark: the live-session screen relay (customer -> daphne -> staff viewer).

Measures, with one real daphne process serving ``portal.asgi:application`` on 127.0.0.1:

1. messages per second and latency (p50, p99) for 1 KB and 100 KB screen messages, customer
   socket -> our relay -> staff socket, the staff client acknowledging every tile;
2. the same load through a bare relay (a tiny asyncio WebSocket server that forwards every
   binary message from the sender connection to the receiver connection), and the ratio;
3. the latency of 30 fps x 100 KB, paced, for 10 s (ours and bare);
4. how many concurrent sessions at 10 fps x 60 KB stay under 100 ms p99 (1, 2, 4, ... then
   bisected; each step 5 s, a failing step tried once more; bounded in sessions and time),
   and the bare relay at the first failing count, to tell the relay's limit from the machine's;
5. what recording costs: the throughput of 1 and 2 against a second daphne serving
   ``bench/unrecorded_asgi.py`` (the same relay, its per-message record written nowhere), in
   interleaved rounds (BENCH_RELAY_COST_ROUNDS, default 3; medians), as msg/s and relay CPU
   per tile, and the cost in %.

BENCH_RELAY_PARTS picks parts (comma-separated, default ``throughput,cost,paced,sweep``;
``sweep_unrecorded`` adds the sweep of 4 on the unrecorded relay). ``BENCH_RELAY_PARTS=cost``
measures only what recording costs (about a minute); BENCH_RELAY_SIZES (KB, default ``1,100``)
picks the message sizes of 1, 2 and 5.

Runs on a throw-away test database and the channel layer of whatever the environment
configures, like ``make bench``:

    make bench
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/portal_bench \
        REDIS_URL=redis://127.0.0.1:6379/6 make bench

Three processes of this file take part besides daphne:

* the orchestrator (no arguments): Django, the throw-away database, the sessions, daphne;
* ``--client``: the load generator. Its WebSocket client is autobahn on asyncio, the library
  daphne itself is built on, so that the client side is the same for both relays.
  It cannot run inside the Django process: daphne's app config imports autobahn's Twisted
  flavour, which binds txaio to Twisted. It offers no permessage-deflate, and checks that
  none was negotiated; a separate raw handshake records whether each server would accept it.
* ``--bare-relay PORT``: the bare relay, written with the ``websockets`` library.

Latency is the receive time minus the send time of the same tile in the client process
(``time.perf_counter_ns`` carried in the first 8 bytes of the payload); it includes both
client ends, which are the same for ours and the bare relay. A tile that never arrives counts
as infinitely late in the concurrency search. Each measurement also records the CPU time of
the relay process (per tile: steadier than msg/s on a shared machine), of the client and of
the whole machine, since other work on it (a test run) shifts the figures. Figures go to
``var/bench/relay-<db>-<layer>.json``.

On the Redis layer one extra session sends a 1 KB tile every 0.5 s throughout: with redis-py 8
(5 s default socket timeout) and channels_redis 4.3 (5 s BZPOPMIN), a daphne process whose
channel layer is quiet for 5 s closes its sockets with 1011 (BENCH_RELAY_KEEPALIVE=0 shows it).

Settings the bench changes, for daphne and itself only: opening hours all week, no public
holidays, its own PORTAL_VAR_DIR and PORTAL_CACHE_PREFIX (so that nothing is shared with a
test run on the same machine), and PORTAL_LIVE_MAX_MESSAGES_PER_SECOND raised to
RELAY_RATE_LIMIT: at the default (200 per socket) a throughput run would be closed with 4429.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTPUT_DIR = ROOT / "var" / "bench"

KB = 1024
# Whole WebSocket message, header included; BENCH_RELAY_SIZES=100 measures 100 KB only.
SIZES = [(f"{kb} KB", int(kb) * KB)
         for kb in os.environ.get("BENCH_RELAY_SIZES", "1,100").split(",") if kb.strip()]
WARMUP_SECONDS = 0.5
THROUGHPUT_SECONDS = 5.0
THROUGHPUT_MAX_WINDOW = 16  # tiles in flight in a throughput run (see window_for)
PINGPONG_SECONDS = 3.0
PINGPONG_MAX = 3000
PACED_FPS, PACED_BYTES, PACED_SECONDS = 30, 100 * KB, 10.0
SWEEP_FPS, SWEEP_BYTES, SWEEP_SECONDS = 10, 60 * KB, 5.0
SWEEP_P99_LIMIT_MS = 100.0
SWEEP_MAX_SESSIONS = int(os.environ.get("BENCH_RELAY_MAX_SESSIONS", 128))
SWEEP_BUDGET_SECONDS = float(os.environ.get("BENCH_RELAY_SWEEP_BUDGET", 180))
DRAIN_SECONDS = 3.0  # after sending stops, how long late tiles may still arrive
STALL_SECONDS = 2.0  # a closed loop with no tile arriving for this long has stalled
HEARTBEAT_EVERY = 2.0
KEEPALIVE_EVERY = 0.5
RELAY_RATE_LIMIT = 1_000_000
SCREEN = (1920, 1080)
TILE_RECT = (0, 0, 256, 256)
WATCHDOG_SECONDS = 20 * 60  # the orchestrator kills a load client that runs longer
ALL_PARTS = ("throughput", "cost", "paced", "sweep")
OPTIONAL_PARTS = ("sweep_unrecorded",)  # the sweep again on the unrecorded relay (~3 min)
PARTS = [part.strip() for part in
         os.environ.get("BENCH_RELAY_PARTS", ",".join(ALL_PARTS)).split(",") if part.strip()]
COST_ROUNDS = int(os.environ.get("BENCH_RELAY_COST_ROUNDS", 3))
# Which server each pool of connections talks to: "unrecorded" is a second daphne serving
# bench/unrecorded_asgi.py; each daphne on the Redis layer has its own keepalive session.
SERVER_OF = {"ours": "ours", "keepalive": "ours", "unrecorded": "unrecorded",
             "keepalive_unrecorded": "unrecorded", "bare": "bare"}
STAMP = struct.Struct("!Q")


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list (inf for a lost tile sorts last)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def ms(value: float) -> float | None:
    """Round for the JSON: None for NaN and for a lost tile's infinity."""
    return None if math.isnan(value) or math.isinf(value) else round(value, 3)


def tile_header_packer(header: dict):
    """The tile header as the protocol packs it; the orchestrator checks it against
    ``sessions_app.protocol.pack_tile`` before any load runs."""
    packer = struct.Struct(header["format"])
    version, kind, codec = header["version"], header["kind"], header["codec"]
    flag = header["keyframe_flag"]

    def pack(seq: int, captured_ms: int, keyframe: bool) -> bytes:
        x, y, w, h = (0, 0, *SCREEN) if keyframe else TILE_RECT
        return packer.pack(version, kind, seq, captured_ms, *SCREEN, x, y, w, h, codec,
                           flag if keyframe else 0)

    return pack, packer.size


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores), from /proc/stat."""
    with open("/proc/stat") as stat:
        ticks = [int(v) for v in stat.readline().split()[1:9]]
    idle = ticks[3] + ticks[4]  # idle and iowait
    return (sum(ticks) - idle) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU of the relay process, of this client and of the whole machine (every process,
    the other engineer's test run too) over one measurement, in % of one core."""

    def __init__(self, relay_pid: int):
        self.relay_pid = relay_pid
        self.wall = time.perf_counter()
        self.relay = cpu_seconds(relay_pid)
        self.own = time.process_time()
        self.machine = machine_busy_seconds()

    def stop(self) -> dict:
        wall = time.perf_counter() - self.wall
        relay = cpu_seconds(self.relay_pid) - self.relay
        own = time.process_time() - self.own
        machine = machine_busy_seconds() - self.machine
        return {
            "relay_cpu_s": round(relay, 3),
            "relay_process_pct": round(100 * relay / wall, 1),
            "client_pct": round(100 * own / wall, 1),
            "machine_pct": round(100 * machine / wall, 1),
            "machine_pct_max": 100 * (os.cpu_count() or 1),
        }


# ============================================================================================
# The bare relay (``--bare-relay PORT``): no Django, the ``websockets`` library.
# ============================================================================================


def bare_relay(port: int) -> None:
    """``/send/<id>`` and ``/recv/<id>``: binary messages of the sender go to the receiver;
    anything else (heartbeats, acks) is read and dropped. The ``websockets`` library, with
    permessage-deflate switched off and 1 MiB messages, as daphne has them."""
    import websockets

    pairs: dict[str, dict[str, object]] = {}

    async def relay(connection) -> None:
        role, pair = connection.request.path.strip("/").split("/")[-2:]
        members = pairs.setdefault(pair, {})
        members[role] = connection
        try:
            async for message in connection:
                if isinstance(message, bytes) and role == "send":
                    receiver = members.get("recv")
                    if receiver is not None:
                        await receiver.send(message)
        except websockets.ConnectionClosed:
            pass
        finally:
            if members.get(role) is connection:
                del members[role]

    async def serve() -> None:
        stop = asyncio.get_running_loop().create_future()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
        async with websockets.serve(relay, "127.0.0.1", port, compression=None,
                                    max_size=2**20, max_queue=None):
            print(f"bare relay listening on 127.0.0.1:{port}", flush=True)
            await stop

    asyncio.run(serve())


# ============================================================================================
# The load client (``--client``): no Django, autobahn on asyncio. Reads its configuration as
# one JSON line on stdin, asks the orchestrator for sessions with JSON lines on stdout, and
# ends with one JSON line of results. Progress goes to stderr.
# ============================================================================================


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def deflate_probe(port: int, path: str) -> dict:
    """One raw opening handshake offering permessage-deflate: does the server accept it?"""
    offer = "permessage-deflate; client_max_window_bits"
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
         f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
         f"Origin: http://127.0.0.1:{port}\r\nSec-WebSocket-Extensions: {offer}\r\n\r\n").encode()
    )
    await writer.drain()
    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).decode("latin-1")
    writer.close()
    lines = head.split("\r\n")
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in lines[1:] if ":" in line)
    }
    answer = headers.get("sec-websocket-extensions")
    return {"path": path, "offered": offer, "status": lines[0],
            "response_extensions": answer,
            "accepted": bool(answer and "permessage-deflate" in answer)}


class Recorder:
    """One measurement on one pair: tiles sent and received from ``first_seq`` on."""

    def __init__(self, first_seq: int):
        self.first_seq = first_seq
        self.sent = 0
        self.received = 0
        self.latencies_ns: list[int] = []
        self.send_lag_ms: list[float] = []
        self.last_receive_ns = 0
        self.event = asyncio.Event()

    @property
    def outstanding(self) -> int:
        return self.sent - self.received


class Pair:
    """A sender (customer) and a receiver (staff viewer) connection of one session."""

    def __init__(self, client: LoadClient, relay: str, label: str):
        self.client, self.relay, self.label = client, relay, label
        self.sender = self.receiver = None
        self.seq = 0
        self.want_keyframe = True
        self.keyframe_requests = 0
        self.rec: Recorder | None = None
        self.problems: list[str] = []

    def start(self) -> Recorder:
        self.rec = Recorder(self.seq + 1)
        return self.rec

    def stop(self) -> Recorder:
        rec, self.rec = self.rec, None
        return rec

    def send(self, size: int) -> None:
        self.seq += 1
        keyframe, self.want_keyframe = self.want_keyframe, False
        head = self.client.pack(self.seq, int(time.time() * 1000), keyframe)
        message = head + STAMP.pack(time.perf_counter_ns()) + self.client.fillers[size]
        self.sender.sendMessage(message, isBinary=True)
        if self.rec is not None:
            self.rec.sent += 1

    def tile_received(self, payload: bytes) -> None:
        now = time.perf_counter_ns()
        seq = int.from_bytes(payload[2:6], "big")
        sent_ns = STAMP.unpack_from(payload, self.client.header_bytes)[0]
        self.receiver.sendMessage(b'{"type":"ack","seq":%d}' % seq)
        rec = self.rec
        if rec is not None and seq >= rec.first_seq:
            rec.latencies_ns.append(now - sent_ns)
            rec.received += 1
            rec.last_receive_ns = now
            rec.event.set()

    @property
    def open(self) -> bool:
        return all(c is not None and c.bench_open for c in (self.sender, self.receiver))


class Sink:
    """What one connection does with what it receives."""

    def __init__(self, pair: Pair, role: str, *, welcome: bool):
        self.pair, self.role = pair, role
        self.welcome = asyncio.get_running_loop().create_future()
        if not welcome:
            self.welcome.set_result(None)

    def text(self, payload: bytes) -> None:
        message = json.loads(payload)
        kind = message.get("type")
        if kind == "welcome" and not self.welcome.done():
            self.welcome.set_result(message)
        elif kind == "keyframe_request":
            self.pair.want_keyframe = True
            self.pair.keyframe_requests += 1
        elif kind in ("error", "ended"):
            self.pair.problems.append(f"{self.role} got {message}")

    def binary(self, payload: bytes) -> None:
        if self.role == "receiver":
            self.pair.tile_received(payload)

    def closed(self, code, reason) -> None:
        if not self.welcome.done():
            self.welcome.set_exception(ConnectionError(f"{self.role} closed: {code} {reason}"))
        if not self.pair.client.closing:
            self.pair.problems.append(f"{self.role} closed: {code} {reason}")


class LoadClient:
    def __init__(self, config: dict):
        self.config = config
        self.pack, self.header_bytes = tile_header_packer(config["header"])
        self.fillers = {
            size: os.urandom(size - self.header_bytes - STAMP.size)
            for size in {size for _, size in SIZES} | {PACED_BYTES, SWEEP_BYTES}
        }
        self.pairs: dict[str, list[Pair]] = {relay: [] for relay in SERVER_OF}
        self.closing = False
        self.extensions_in_use: set[str] = set()
        self.asking = asyncio.Lock()

    # --- Connections ------------------------------------------------------------------------

    async def connect(self, port: int, path: str, sink: Sink, headers: dict | None = None):
        from autobahn.asyncio.websocket import WebSocketClientFactory, WebSocketClientProtocol

        class Connection(WebSocketClientProtocol):
            bench_open = False

            def onOpen(self):
                self.bench_open = True
                if not self.factory.opened.done():
                    self.factory.opened.set_result(self)

            def onMessage(self, payload, isBinary):
                try:
                    (sink.binary if isBinary else sink.text)(payload)
                except Exception:
                    say(f"error handling a message on {path}:\n{traceback.format_exc()}")
                    raise

            def onClose(self, wasClean, code, reason):
                self.bench_open = False
                if not self.factory.opened.done():
                    self.factory.opened.set_exception(
                        ConnectionError(f"{path}: not opened ({code} {reason})"))
                sink.closed(code, reason)

        loop = asyncio.get_running_loop()
        factory = WebSocketClientFactory(f"ws://127.0.0.1:{port}{path}", loop=loop,
                                         origin=f"http://127.0.0.1:{port}", headers=headers)
        factory.protocol = Connection
        factory.opened = loop.create_future()
        # No permessage-deflate offer (autobahn's default, stated here on purpose).
        factory.setProtocolOptions(perMessageCompressionOffers=[], openHandshakeTimeout=15,
                                   closeHandshakeTimeout=2)
        await loop.create_connection(factory, "127.0.0.1", port)
        connection = await asyncio.wait_for(factory.opened, 20)
        self.extensions_in_use.update(str(e) for e in connection.websocket_extensions_in_use)
        return connection

    async def request_sessions(self, count: int) -> list[dict]:
        async with self.asking:  # one question at a time on the pipe
            print(json.dumps({"op": "sessions", "count": count}), flush=True)
            line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        return json.loads(line)["sessions"]

    async def grow(self, relay: str, count: int) -> list[Pair]:
        """At least ``count`` open pairs of ``relay``; the first ``count`` are returned."""
        pool = self.pairs[relay]
        missing = count - len(pool)
        if missing > 0:
            port = self.config["ports"][SERVER_OF[relay]]
            if relay != "bare":
                for info in await self.request_sessions(missing):
                    pair = Pair(self, relay, info["reference"])
                    customer = Sink(pair, "sender", welcome=True)
                    pair.sender = await self.connect(port, "/ws/live/customer/", customer)
                    pair.sender.sendMessage(
                        json.dumps({"type": "hello", "token": info["token"]}).encode())
                    await asyncio.wait_for(customer.welcome, 20)
                    viewer = Sink(pair, "receiver", welcome=True)
                    pair.receiver = await self.connect(
                        port, f"/ws/live/staff/{info['reference']}/", viewer,
                        headers={"Cookie": info["cookie"]})
                    await asyncio.wait_for(viewer.welcome, 20)
                    pool.append(pair)
            else:
                for _ in range(missing):
                    pair = Pair(self, relay, f"bare-{len(pool) + 1}")
                    pair.receiver = await self.connect(
                        port, f"/recv/{pair.label}", Sink(pair, "receiver", welcome=False))
                    pair.sender = await self.connect(
                        port, f"/send/{pair.label}", Sink(pair, "sender", welcome=False))
                    pool.append(pair)
            await asyncio.sleep(0.3)  # let the welcome traffic (peer, keyframe requests) settle
        for pair in pool[:count]:
            if not pair.open or pair.problems:
                raise RuntimeError(f"{relay} pair {pair.label}: {pair.problems or 'closed'}")
        return pool[:count]

    async def keepalive(self, pair: Pair) -> None:
        """On the Redis layer: one extra session sending a small tile every KEEPALIVE_EVERY, so
        that daphne's channel layer is never quiet for 5 s. With redis-py 8 (5 s default socket
        timeout) and channels_redis (5 s BZPOPMIN) a quiet process kills its consumers with
        1011; this keeps the bench measuring the relay rather than that bug."""
        while True:
            pair.send(KB)
            await asyncio.sleep(KEEPALIVE_EVERY)

    async def heartbeats(self) -> None:
        """The customer's heartbeat (the server closes a silent customer after 3 periods)."""
        while True:
            await asyncio.sleep(HEARTBEAT_EVERY)
            for pair in [p for pool in self.pairs.values() for p in pool]:
                if pair.sender is not None and pair.sender.bench_open:
                    pair.sender.sendMessage(b'{"type":"heartbeat"}')

    # --- Measurements -----------------------------------------------------------------------

    def relay_pid(self, relay: str) -> int:
        return self.config["pids"][SERVER_OF[relay]]

    async def drain(self, recs: list[Recorder]) -> None:
        deadline = time.perf_counter() + DRAIN_SECONDS
        while any(r.outstanding > 0 for r in recs) and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)

    def window_for(self, size: int) -> int:
        """Tiles in flight: the server may hold as many again whose acks are on their way, and
        both together stay below the viewer window, so that flow control drops nothing."""
        window_bytes = self.config["live"]["viewer_window_bytes"]
        return max(1, min(THROUGHPUT_MAX_WINDOW, window_bytes // (2 * size) - 1))

    async def closed_loop(self, pair: Pair, size: int, seconds: float, window: int) -> dict:
        rec = pair.start()
        started = time.perf_counter_ns()
        deadline = time.perf_counter() + seconds
        stalled = False
        while time.perf_counter() < deadline:
            while rec.outstanding < window:
                pair.send(size)
            rec.event.clear()
            try:
                await asyncio.wait_for(rec.event.wait(), STALL_SECONDS)
            except TimeoutError:
                stalled = True
                break
        await self.drain([rec])
        pair.stop()
        elapsed = max(rec.last_receive_ns - started, 1) / 1e9
        latencies = sorted(v / 1e6 for v in rec.latencies_ns)
        return {
            "window": window, "seconds": round(elapsed, 3), "sent": rec.sent,
            "received": rec.received, "lost": rec.outstanding, "stalled": stalled,
            "msgs_per_s": round(rec.received / elapsed, 1),
            "mb_per_s": round(rec.received * size / elapsed / 1e6, 2),
            "p50_ms": ms(percentile(latencies, 50)), "p99_ms": ms(percentile(latencies, 99)),
        }

    async def ping_pong(self, pair: Pair, size: int, seconds: float) -> dict:
        """One tile in flight at a time: the latency without queueing."""
        rec = pair.start()
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline and rec.sent < PINGPONG_MAX:
            rec.event.clear()
            pair.send(size)
            try:
                await asyncio.wait_for(rec.event.wait(), STALL_SECONDS)
            except TimeoutError:
                break
        await self.drain([rec])
        pair.stop()
        latencies = sorted(v / 1e6 for v in rec.latencies_ns)
        return {"sent": rec.sent, "received": rec.received, "lost": rec.outstanding,
                "p50_ms": ms(percentile(latencies, 50)), "p99_ms": ms(percentile(latencies, 99)),
                "max_ms": ms(latencies[-1] if latencies else math.nan)}

    async def paced(self, pairs: list[Pair], size: int, fps: int, seconds: float) -> dict:
        """Every pair sends ``fps`` tiles a second for ``seconds``, at a random phase."""
        recs = [pair.start() for pair in pairs]

        async def sender(pair: Pair, rec: Recorder) -> None:
            await asyncio.sleep(random.random() / fps)
            start = time.perf_counter()
            for i in range(int(seconds * fps)):
                due = start + i / fps
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                rec.send_lag_ms.append((time.perf_counter() - due) * 1000)
                pair.send(size)

        await asyncio.gather(*(sender(p, r) for p, r in zip(pairs, recs, strict=True)))
        await self.drain(recs)
        for pair in pairs:
            pair.stop()
        sent = sum(r.sent for r in recs)
        received = sum(r.received for r in recs)
        latencies = sorted(v / 1e6 for r in recs for v in r.latencies_ns)
        with_lost = latencies + [math.inf] * (sent - received)
        lags = sorted(v for r in recs for v in r.send_lag_ms)
        return {
            "sessions": len(pairs), "fps": fps, "bytes": size, "seconds": seconds,
            "sent": sent, "received": received, "lost": sent - received,
            "p50_ms": ms(percentile(latencies, 50)), "p99_ms": ms(percentile(latencies, 99)),
            "max_ms": ms(latencies[-1] if latencies else math.nan),
            "p99_counting_lost_ms": ms(percentile(with_lost, 99)),
            "send_lag_p99_ms": ms(percentile(lags, 99)),
            "problems": [p for pair in pairs for p in pair.problems],
        }

    async def measure(self, relay: str, coroutine) -> dict:
        meter = CpuMeter(self.relay_pid(relay))
        result = await coroutine
        result["cpu"] = meter.stop()
        return result

    # --- The four parts ---------------------------------------------------------------------

    async def part_throughput(self) -> dict:
        results: dict = {}
        for name, size in SIZES:
            results[name] = {"bytes": size}
            for relay in ("ours", "bare"):
                [pair] = await self.grow(relay, 1)
                window = self.window_for(size)
                await self.closed_loop(pair, size, WARMUP_SECONDS, window)
                loaded = await self.measure(
                    relay, self.closed_loop(pair, size, THROUGHPUT_SECONDS, window))
                unloaded = await self.measure(
                    relay, self.ping_pong(pair, size, PINGPONG_SECONDS))
                # CPU time per relayed tile: steadier than msg/s on a shared machine.
                loaded["relay_cpu_ms_per_msg"] = round(
                    1000 * loaded["cpu"]["relay_cpu_s"] / max(loaded["received"], 1), 3)
                results[name][relay] = {"throughput": loaded, "ping_pong": unloaded}
                say(f"  {name:>6} {relay}: {loaded['msgs_per_s']:9.1f} msg/s, "
                    f"ping-pong p50 {unloaded['p50_ms']} ms p99 {unloaded['p99_ms']} ms, "
                    f"loaded p99 {loaded['p99_ms']} ms, lost {loaded['lost']}")
            ours, bare = results[name]["ours"], results[name]["bare"]
            results[name]["ratio_ours_to_bare"] = {
                "throughput": ratio(ours["throughput"]["msgs_per_s"],
                                    bare["throughput"]["msgs_per_s"]),
                "cpu_per_msg": ratio(ours["throughput"]["relay_cpu_ms_per_msg"],
                                     bare["throughput"]["relay_cpu_ms_per_msg"]),
                "ping_pong_p50": ratio(ours["ping_pong"]["p50_ms"], bare["ping_pong"]["p50_ms"]),
                "ping_pong_p99": ratio(ours["ping_pong"]["p99_ms"], bare["ping_pong"]["p99_ms"]),
                "loaded_p50": ratio(ours["throughput"]["p50_ms"], bare["throughput"]["p50_ms"]),
                "loaded_p99": ratio(ours["throughput"]["p99_ms"], bare["throughput"]["p99_ms"]),
            }
        return results

    async def part_recording_cost(self) -> dict:
        """Our relay against the same relay recording nothing, in interleaved rounds."""
        results: dict = {}
        for name, size in SIZES:
            window = self.window_for(size)
            rounds: dict[str, list[dict]] = {"ours": [], "unrecorded": []}
            for number in range(COST_ROUNDS):
                # Alternate the order, so that a drift of the machine's load hits both alike.
                order = ("ours", "unrecorded") if number % 2 == 0 else ("unrecorded", "ours")
                for relay in order:
                    [pair] = await self.grow(relay, 1)
                    await self.closed_loop(pair, size, WARMUP_SECONDS, window)
                    loaded = await self.measure(
                        relay, self.closed_loop(pair, size, THROUGHPUT_SECONDS, window))
                    loaded["relay_cpu_ms_per_msg"] = round(
                        1000 * loaded["cpu"]["relay_cpu_s"] / max(loaded["received"], 1), 3)
                    rounds[relay].append(loaded)
                    say(f"  {name:>6} {relay:>10} round {number + 1}: "
                        f"{loaded['msgs_per_s']:9.1f} msg/s, "
                        f"{loaded['relay_cpu_ms_per_msg']:.3f} relay CPU ms/msg, machine CPU "
                        f"{loaded['cpu']['machine_pct']}%, lost {loaded['lost']}")
            row: dict = {"bytes": size, "window": window, "rounds": rounds}
            for relay, measured in rounds.items():
                row[relay] = {
                    "msgs_per_s": median([r["msgs_per_s"] for r in measured]),
                    "relay_cpu_ms_per_msg": median([r["relay_cpu_ms_per_msg"]
                                                    for r in measured]),
                    "p50_ms": median([r["p50_ms"] for r in measured]),
                    "p99_ms": median([r["p99_ms"] for r in measured]),
                    "machine_pct": median([r["cpu"]["machine_pct"] for r in measured]),
                    "lost": sum(r["lost"] for r in measured),
                }
            ours, unrecorded = row["ours"], row["unrecorded"]
            row["cost_pct"] = {
                # Fewer messages per second with recording: 10 means 10 % fewer.
                "throughput": percent_less(ours["msgs_per_s"], unrecorded["msgs_per_s"]),
                # More relay CPU per tile with recording: 10 means 10 % more.
                "cpu_per_msg": percent_more(ours["relay_cpu_ms_per_msg"],
                                            unrecorded["relay_cpu_ms_per_msg"]),
            }
            say(f"  {name:>6} recording costs {row['cost_pct']['throughput']} % msg/s, "
                f"{row['cost_pct']['cpu_per_msg']} % relay CPU per tile (medians of "
                f"{COST_ROUNDS})")
            results[name] = row
        return results

    async def part_paced(self) -> dict:
        results = {}
        for relay in ("ours", "bare"):
            pairs = await self.grow(relay, 1)
            results[relay] = await self.measure(
                relay, self.paced(pairs, PACED_BYTES, PACED_FPS, PACED_SECONDS))
            r = results[relay]
            say(f"  {relay}: p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, lost {r['lost']}")
        results["ratio_ours_to_bare"] = {
            "p50": ratio(results["ours"]["p50_ms"], results["bare"]["p50_ms"]),
            "p99": ratio(results["ours"]["p99_ms"], results["bare"]["p99_ms"]),
        }
        return results

    async def sweep_step(self, relay: str, sessions: int) -> dict:
        pairs = await self.grow(relay, sessions)
        result = await self.measure(
            relay, self.paced(pairs, SWEEP_BYTES, SWEEP_FPS, SWEEP_SECONDS))
        p99 = result["p99_counting_lost_ms"]
        result["relay"] = relay
        result["passed"] = (p99 is not None and p99 < SWEEP_P99_LIMIT_MS
                            and not result["problems"])
        say(f"  {relay} {sessions:>3} sessions: p99 {p99} ms (lost {result['lost']}, "
            f"send lag p99 {result['send_lag_p99_ms']} ms, relay CPU "
            f"{result['cpu']['relay_process_pct']}%) -> "
            f"{'under' if result['passed'] else 'OVER'} {SWEEP_P99_LIMIT_MS:.0f} ms")
        return result

    async def part_sweep(self, relay: str = "ours") -> dict:
        started = time.perf_counter()
        steps: list[dict] = []
        passed: int = 0
        failed: int | None = None
        stop_reason = "bisected to one session"

        def over_budget() -> bool:
            return time.perf_counter() - started > SWEEP_BUDGET_SECONDS

        async def attempt(n: int) -> bool:
            try:
                result = await self.sweep_step(relay, n)
            except Exception as error:  # a refused or closed connection counts as a failure
                result = {"sessions": n, "relay": relay, "passed": False, "error": str(error)}
                say(f"  {relay} {n:>3} sessions: error {error}")
            steps.append(result)
            return result["passed"]

        async def step(n: int) -> bool:
            """A failure is tried once more: one stall of a shared machine is not the limit."""
            if await attempt(n):
                return True
            return not over_budget() and await attempt(n)

        n = 1
        while True:
            if await step(n):
                passed = n
                if n >= SWEEP_MAX_SESSIONS:
                    stop_reason = f"reached the maximum of {SWEEP_MAX_SESSIONS} sessions"
                    break
                if over_budget():
                    stop_reason = "time budget spent while doubling"
                    break
                n = min(n * 2, SWEEP_MAX_SESSIONS)
            else:
                failed = n
                break
        while failed is not None and failed - passed > 1:
            if over_budget():
                stop_reason = "time budget spent while bisecting"
                break
            mid = (passed + failed) // 2
            if await step(mid):
                passed = mid
            else:
                failed = mid
        bare = None
        reference = failed or passed
        if reference and relay == "ours":
            try:
                bare = await self.sweep_step("bare", reference)
            except Exception as error:
                bare = {"sessions": reference, "error": str(error)}
        return {
            "fps": SWEEP_FPS, "bytes": SWEEP_BYTES, "seconds_per_step": SWEEP_SECONDS,
            "p99_limit_ms": SWEEP_P99_LIMIT_MS, "max_sessions_tried": SWEEP_MAX_SESSIONS,
            "max_sessions_under_limit": passed, "first_failing": failed,
            "stop_reason": stop_reason, "steps": steps, "bare_at_first_failing": bare,
            "seconds": round(time.perf_counter() - started, 1),
        }

    async def run(self) -> dict:
        ports = self.config["ports"]
        probes = {relay: await deflate_probe(ports[relay], path) for relay, path in
                  (("ours", "/ws/live/customer/"), ("bare", "/recv/probe"))}
        beating = asyncio.ensure_future(self.heartbeats())
        result: dict = {"permessage_deflate_probe": probes}
        keeping = None
        try:
            if self.config["keepalive"]:
                pools = ["keepalive"] + (["keepalive_unrecorded"] if unrecorded_needed() else [])
                pairs = [(await self.grow(pool, 1))[0] for pool in pools]
                keeping = asyncio.gather(*(self.keepalive(pair) for pair in pairs))
            if "throughput" in PARTS:
                say("1+2. throughput and latency, ours vs bare")
                result["throughput"] = await self.part_throughput()
            if "cost" in PARTS:
                say(f"5. what recording costs: ours vs unrecorded, {COST_ROUNDS} rounds")
                result["recording_cost"] = await self.part_recording_cost()
            if "paced" in PARTS:
                say(f"3. {PACED_FPS} fps x {PACED_BYTES // KB} KB for {PACED_SECONDS:.0f} s")
                result["paced"] = await self.part_paced()
            if "sweep" in PARTS:
                say(f"4. concurrent sessions at {SWEEP_FPS} fps x {SWEEP_BYTES // KB} KB, "
                    f"p99 < {SWEEP_P99_LIMIT_MS:.0f} ms")
                result["sweep"] = await self.part_sweep()
            if "sweep_unrecorded" in PARTS:
                say("4b. the same sweep on the unrecorded relay")
                result["sweep_unrecorded"] = await self.part_sweep("unrecorded")
        except Exception:
            result["error"] = traceback.format_exc()
            say(result["error"])
        finally:
            beating.cancel()
            if keeping is not None:
                keeping.cancel()
            result["keepalive_problems"] = [
                p for pool in ("keepalive", "keepalive_unrecorded")
                for pair in self.pairs[pool] for p in pair.problems]
            self.closing = True
            result["client_extensions_in_use"] = sorted(self.extensions_in_use)
            result["keyframe_requests"] = sum(p.keyframe_requests for relay in
                                              ("ours", "unrecorded")
                                              for p in self.pairs[relay])
            result["connections"] = {relay: len(pool) for relay, pool in self.pairs.items()}
            for pool in self.pairs.values():
                for pair in pool:
                    for connection in (pair.sender, pair.receiver):
                        if connection is not None and connection.bench_open:
                            connection.sendClose(1000)
            await asyncio.sleep(1.0)
        return result


def unrecorded_needed() -> bool:
    return bool({"cost", "sweep_unrecorded"} & set(PARTS))


def ratio(ours, bare) -> float | None:
    if ours is None or bare is None or not bare:
        return None
    return round(ours / bare, 2)


def median(values: list) -> float | None:
    present = sorted(v for v in values if v is not None)
    if not present:
        return None
    middle = len(present) // 2
    return present[middle] if len(present) % 2 else (present[middle - 1] + present[middle]) / 2


def percent_less(recorded, unrecorded) -> float | None:
    if recorded is None or not unrecorded:
        return None
    return round(100 * (1 - recorded / unrecorded), 1)


def percent_more(recorded, unrecorded) -> float | None:
    if recorded is None or not unrecorded:
        return None
    return round(100 * (recorded / unrecorded - 1), 1)


def load_client() -> None:
    config = json.loads(sys.stdin.readline())
    result = asyncio.run(LoadClient(config).run())
    print(json.dumps({"op": "result", "data": result}), flush=True)


# ============================================================================================
# The orchestrator: Django, the throw-away database, the sessions, daphne, the output.
# ============================================================================================


def orchestrate() -> None:
    pid = os.getpid()
    run_dir = OUTPUT_DIR / f"relay-run-{pid}"
    os.environ.update({
        "PORTAL_OPENING_HOURS": "mon-sun 00:00-23:59:59",
        "PORTAL_HOLIDAY_STATE": "none",
        "PORTAL_VAR_DIR": str(run_dir),
        "PORTAL_CACHE_PREFIX": f"{os.environ.get('PORTAL_CACHE_PREFIX', 'portal')}-relay-{pid}",
    })
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    sys.path.insert(0, str(ROOT))

    import django

    django.setup()

    from django.conf import settings
    from django.db import connection, connections
    from django.test.utils import setup_databases, teardown_databases

    from sessions_app import protocol
    from tests.processes import free_port, http_status, start, stop, wait_until

    if not {"127.0.0.1", "*"} & set(settings.ALLOWED_HOSTS):
        raise SystemExit("ALLOWED_HOSTS must include 127.0.0.1 (run through `make bench`)")
    unknown = set(PARTS) - set(ALL_PARTS) - set(OPTIONAL_PARTS)
    if unknown or not PARTS or not SIZES:
        raise SystemExit(f"BENCH_RELAY_PARTS: unknown parts {sorted(unknown)}; choose from "
                         f"{','.join(ALL_PARTS + OPTIONAL_PARTS)} (and BENCH_RELAY_SIZES in KB)")
    check_header_packing(protocol)
    if connection.vendor != "sqlite":
        # Never the developer's database, nor the test suite's test database.
        connection.settings_dict["TEST"]["NAME"] = f"test_{connection.settings_dict['NAME']}_relay"
    old_config = setup_databases(verbosity=0, interactive=False, serialized_aliases=set())
    processes: dict[str, subprocess.Popen] = {}
    failed = True
    try:
        env = daphne_env(connection)
        ports = {"ours": free_port(), "bare": free_port()}
        processes["ours"] = start(
            ["-m", "daphne", "-b", "127.0.0.1", "-p", str(ports["ours"]),
             "portal.asgi:application"], env, run_dir / "daphne.log")
        if unrecorded_needed():
            # The same relay with its per-message record written nowhere (bench only).
            ports["unrecorded"] = free_port()
            processes["unrecorded"] = start(
                ["-m", "daphne", "-b", "127.0.0.1", "-p", str(ports["unrecorded"]),
                 "bench.unrecorded_asgi:application"],
                {**env, "BENCH_UNRECORDED_RELAY": "1"}, run_dir / "daphne-unrecorded.log")
        processes["bare"] = start([str(Path(__file__).resolve()), "--bare-relay",
                                   str(ports["bare"])], dict(os.environ), run_dir / "bare.log")
        healthz = wait_until(
            lambda: processes["ours"].poll() is not None
            or http_status(f"http://127.0.0.1:{ports['ours']}/healthz"),
            timeout=60, what="daphne to answer", log=run_dir / "daphne.log")
        wait_until(lambda: port_open(ports["bare"]) or processes["bare"].poll() is not None,
                   timeout=30, what="the bare relay", log=run_dir / "bare.log")
        if "unrecorded" in processes:
            wait_until(
                lambda: processes["unrecorded"].poll() is not None
                or http_status(f"http://127.0.0.1:{ports['unrecorded']}/healthz"),
                timeout=60, what="the unrecorded daphne to answer",
                log=run_dir / "daphne-unrecorded.log")
        for name, process in processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}")
        layer = settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1]
        keepalive = "Redis" in layer and os.environ.get("BENCH_RELAY_KEEPALIVE", "1") != "0"
        if keepalive:
            print(f"Redis layer: a keepalive session sends 1 KB every {KEEPALIVE_EVERY} s, "
                  "since a daphne whose layer is quiet for 5 s loses its sockets (1011) with "
                  "redis-py 8 + channels_redis 4.3; BENCH_RELAY_KEEPALIVE=0 shows it", flush=True)
        print(f"relay benchmark: database {connection.vendor}, channel layer {layer}, "
              f"daphne on 127.0.0.1:{ports['ours']} (/healthz {healthz}), bare relay on "
              f"127.0.0.1:{ports['bare']}; python {sys.version.split()[0]}, "
              f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}", flush=True)
        config = {
            "ports": ports,
            "pids": {name: process.pid for name, process in processes.items()},
            "header": {"format": protocol.HEADER.format, "version": protocol.PROTOCOL_VERSION,
                       "kind": protocol.KIND_TILE, "codec": protocol.CODEC_JPEG,
                       "keyframe_flag": protocol.FLAG_KEYFRAME},
            "live": {"viewer_window_bytes": settings.LIVE_VIEWER_WINDOW_BYTES},
            "keepalive": keepalive,
        }
        started = time.monotonic()
        load_before = os.getloadavg()
        make_session = SessionMaker(settings)
        data = drive_client(config, make_session)
        figures = {
            "benchmark": "live-session screen relay",
            "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "backend": {"database": connection.vendor, "channel_layer": layer},
            "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                        "loadavg_before": [round(v, 2) for v in load_before],
                        "loadavg_after": [round(v, 2) for v in os.getloadavg()]},
            "versions": versions(),
            "client": "autobahn on asyncio (websockets/aiohttp are not locked); one process "
                      "sends and receives; no permessage-deflate offered",
            "settings": {
                "PORTAL_LIVE_MAX_MESSAGES_PER_SECOND (daphne, for this bench)": RELAY_RATE_LIMIT,
                "LIVE_MAX_MESSAGES_PER_SECOND (default)": settings.LIVE_MAX_MESSAGES_PER_SECOND,
                "LIVE_VIEWER_WINDOW_BYTES": settings.LIVE_VIEWER_WINDOW_BYTES,
                "LIVE_MAX_MESSAGE_BYTES": settings.LIVE_MAX_MESSAGE_BYTES,
            },
            "parts": PARTS,
            "seconds": round(time.monotonic() - started, 1),
            "sessions_made": {"count": make_session.made,
                              "seconds": round(make_session.seconds, 1)},
            "keepalive_session": keepalive and {
                "why": "redis-py >= 8 reads with a 5 s socket timeout by default and "
                       "channels_redis 4.3 blocks 5 s in BZPOPMIN: a daphne process whose "
                       "channel layer is quiet for 5 s closes its sockets with 1011",
                "every_seconds": KEEPALIVE_EVERY, "bytes": KB},
            **data,
        }
        failed = "error" in data
    finally:
        for process in processes.values():
            try:
                stop(process)
            except subprocess.TimeoutExpired:
                pass
        connections.close_all()
        teardown_databases(old_config, verbosity=0)
        clean_redis(settings)
        if failed:
            print(f"logs kept in {run_dir}", file=sys.stderr)
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
    layer_name = "redis" if "Redis" in layer else "inmemory"
    # A run of some parts only does not overwrite the figures of a full run.
    parts = "" if PARTS == list(ALL_PARTS) and len(SIZES) == 2 else "-" + "-".join(PARTS)
    output = Path(os.environ.get(
        "BENCH_RELAY_OUTPUT", OUTPUT_DIR / f"relay-{connection.vendor}-{layer_name}{parts}.json"))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(figures, indent=2) + "\n")
    print_tables(figures)
    print(f"figures written to {output}")
    if failed:
        raise SystemExit(1)


def check_header_packing(protocol) -> None:
    """The client packs tiles exactly as ``protocol.pack_tile`` does, and they parse."""
    header = {"format": protocol.HEADER.format, "version": protocol.PROTOCOL_VERSION,
              "kind": protocol.KIND_TILE, "codec": protocol.CODEC_JPEG,
              "keyframe_flag": protocol.FLAG_KEYFRAME}
    pack, size = tile_header_packer(header)
    assert size == protocol.HEADER_BYTES
    for keyframe in (True, False):
        x, y, w, h = (0, 0, *SCREEN) if keyframe else TILE_RECT
        tile = protocol.Tile(7, 1_700_000_000_000, *SCREEN, x, y, w, h, protocol.CODEC_JPEG,
                             protocol.FLAG_KEYFRAME if keyframe else 0)
        wire = protocol.pack_tile(tile, b"payload")
        assert pack(7, 1_700_000_000_000, keyframe) + b"payload" == wire
        assert protocol.parse_tile(wire) == tile


def daphne_env(connection) -> dict[str, str]:
    from urllib.parse import quote

    env = dict(os.environ)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
        env["DATABASE_URL"] = (f"postgresql://{quote(db['USER'], safe='')}{password}@"
                               f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}")
    else:
        env["PORTAL_SQLITE_PATH"] = str(db["NAME"])
    env["PORTAL_LIVE_MAX_MESSAGES_PER_SECOND"] = str(RELAY_RATE_LIMIT)
    return env


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class SessionMaker:
    """Active sessions, each with its own verified staff member (slots may not overlap for
    one staff member), a live token for the customer and the staff member's session cookie."""

    def __init__(self, settings):
        self.settings = settings
        self.made = 0
        self.seconds = 0.0

    def __call__(self) -> dict:
        from datetime import timedelta

        from django.contrib.auth.models import Group, User
        from django.test import Client
        from django.utils import timezone
        from django_otp.plugins.otp_totp.models import TOTPDevice

        from portal.roles import SUPPORT_STAFF
        from sessions_app import actions, business_hours
        from tests.personas import sign_in_verified

        self.made += 1
        user = User.objects.create_user(f"relaybench{self.made:03d}", password=None,
                                        is_staff=True)
        user.groups.add(Group.objects.get(name=SUPPORT_STAFF))
        TOTPDevice.objects.create(user=user, name="Authenticator", confirmed=True)
        client = Client()
        sign_in_verified(client, user)
        cookie = client.cookies[self.settings.SESSION_COOKIE_NAME]
        now = timezone.now()
        today = business_hours.period_on(now.astimezone(business_hours.local_zone()).date())
        if (today.closes - now).total_seconds() < 10:  # just before midnight: the next day
            time.sleep((today.closes - now).total_seconds() + 2)
            return self()
        session = actions.schedule_session(
            by_user=user, customer_name="Bench GmbH", call_note="relay benchmark",
            slot_start=now, slot_end=min(now + timedelta(minutes=30), today.closes),
        )
        key, _ = actions.issue_key(session=session, by_user=user)
        session = actions.redeem_key(typed_key=key, customer_name="Erika Muster",
                                     ip="127.0.0.1", user_agent="relay benchmark")
        actions.admit_customer(session=session, by_user=user)
        session.refresh_from_db()
        return {"reference": session.reference,
                "token": actions.issue_live_token(session=session),
                "cookie": f"{cookie.key}={cookie.value}"}


def drive_client(config: dict, make_session: SessionMaker) -> dict:
    client = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--client"],
                              cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    watchdog = threading.Timer(WATCHDOG_SECONDS, client.kill)
    watchdog.start()
    try:
        client.stdin.write(json.dumps(config) + "\n")
        client.stdin.flush()
        while True:
            line = client.stdout.readline()
            if not line:
                raise RuntimeError(f"the load client exited with {client.wait()}")
            message = json.loads(line)
            if message["op"] == "sessions":
                started = time.monotonic()
                sessions = [make_session() for _ in range(message["count"])]
                make_session.seconds += time.monotonic() - started
                client.stdin.write(json.dumps({"sessions": sessions}) + "\n")
                client.stdin.flush()
            elif message["op"] == "result":
                client.wait(timeout=30)
                return message["data"]
    finally:
        watchdog.cancel()
        if client.poll() is None:
            client.kill()
            client.wait()


def clean_redis(settings) -> None:
    """Delete this run's keys (channel layer, Celery, cache: all under its own prefix)."""
    if not getattr(settings, "REDIS_URL", None):
        return
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    keys = list(client.scan_iter(match=f"{settings.CACHE_PREFIX}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def versions() -> dict:
    from importlib.metadata import version

    return {name: version(name) for name in
            ("daphne", "channels", "channels-redis", "autobahn", "twisted", "django")}


def fmt(value, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def print_tables(figures: dict) -> None:
    probe = figures.get("permessage_deflate_probe", {})
    print()
    print(f"Relay benchmark: {figures['backend']['database']} + "
          f"{figures['backend']['channel_layer']}, {figures['machine']['cpus']} cores, "
          f"load before/after {figures['machine']['loadavg_before'][0]}/"
          f"{figures['machine']['loadavg_after'][0]}")
    print(f"permessage-deflate: not offered by the client (extensions in use: "
          f"{figures.get('client_extensions_in_use') or 'none'}); a probe offering it was "
          + ", ".join(f"{'accepted' if p['accepted'] else 'refused'} by {relay}"
                      for relay, p in probe.items()))
    throughput = figures.get("throughput", {})
    if throughput:
        print()
        print("1+2. Throughput (closed loop, tiles in flight = window) and latency "
              "(ping-pong: one tile in flight)")
        print(f"{'message':>7} {'relay':>5} {'window':>6} {'msg/s':>9} {'MB/s':>7} "
              f"{'ping p50':>9} {'ping p99':>9} {'load p50':>9} {'load p99':>9} {'lost':>5} "
              f"{'relay CPU':>9} {'CPU ms/msg':>10} {'machine CPU':>11}")
        for name, row in throughput.items():
            for relay in ("ours", "bare"):
                if relay not in row:
                    continue
                t, p = row[relay]["throughput"], row[relay]["ping_pong"]
                print(f"{name:>7} {relay:>5} {t['window']:>6} {fmt(t['msgs_per_s']):>9} "
                      f"{fmt(t['mb_per_s'], '.2f'):>7} {fmt(p['p50_ms'], '.2f'):>9} "
                      f"{fmt(p['p99_ms'], '.2f'):>9} {fmt(t['p50_ms'], '.2f'):>9} "
                      f"{fmt(t['p99_ms'], '.2f'):>9} {t['lost'] + p['lost']:>5} "
                      f"{t['cpu']['relay_process_pct']:>8.0f}% "
                      f"{t['relay_cpu_ms_per_msg']:>10.3f} "
                      f"{t['cpu']['machine_pct']:>6.0f}/{t['cpu']['machine_pct_max']}%")
        print()
        print("Ratio ours / bare (throughput: below 1 = ours slower; latency: above 1 = ours "
              "slower)")
        print(f"{'message':>7} {'msg/s':>7} {'CPU/msg':>8} {'ping p50':>9} {'ping p99':>9} "
              f"{'load p50':>9} {'load p99':>9}")
        for name, row in throughput.items():
            r = row.get("ratio_ours_to_bare", {})
            cells = [fmt(r.get(key), ".2f") for key in
                     ("ping_pong_p50", "ping_pong_p99", "loaded_p50", "loaded_p99")]
            print(f"{name:>7} {fmt(r.get('throughput'), '.2f'):>7} "
                  f"{fmt(r.get('cpu_per_msg'), '.2f'):>8} "
                  + " ".join(f"{cell:>9}" for cell in cells))
    cost = figures.get("recording_cost")
    if cost:
        print()
        rounds = len(next(iter(cost.values()))["rounds"]["ours"])
        print(f"5. What recording costs: ours (records every message) vs the same relay "
              f"recording nothing (bench/unrecorded_asgi.py); medians of {rounds} interleaved "
              f"rounds of {THROUGHPUT_SECONDS:.0f} s")
        print(f"{'message':>7} {'relay':>10} {'msg/s':>9} {'CPU ms/msg':>10} {'load p50':>9} "
              f"{'load p99':>9} {'machine CPU':>11} {'lost':>5}")
        for name, row in cost.items():
            for relay in ("ours", "unrecorded"):
                r = row[relay]
                print(f"{name:>7} {relay:>10} {fmt(r['msgs_per_s']):>9} "
                      f"{fmt(r['relay_cpu_ms_per_msg'], '.3f'):>10} {fmt(r['p50_ms'], '.2f'):>9} "
                      f"{fmt(r['p99_ms'], '.2f'):>9} {fmt(r['machine_pct'], '.0f'):>8}% "
                      f"{r['lost']:>5}")
            c = row["cost_pct"]
            print(f"{name:>7} {'cost':>10} {fmt(c['throughput']):>8}% "
                  f"{fmt(c['cpu_per_msg']):>9}%   (msg/s fewer, relay CPU per tile more)")
    paced = figures.get("paced")
    if paced:
        print()
        print(f"3. Paced {PACED_FPS} fps x {PACED_BYTES // KB} KB for {PACED_SECONDS:.0f} s")
        print(f"{'relay':>5} {'sent':>5} {'lost':>5} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
              f"{'send lag p99':>12} {'relay CPU':>9} {'machine CPU':>11}")
        for relay in ("ours", "bare"):
            r = paced[relay]
            print(f"{relay:>5} {r['sent']:>5} {r['lost']:>5} {fmt(r['p50_ms'], '.2f'):>7} "
                  f"{fmt(r['p99_ms'], '.2f'):>7} {fmt(r['max_ms'], '.2f'):>7} "
                  f"{fmt(r['send_lag_p99_ms'], '.2f'):>12} {r['cpu']['relay_process_pct']:>8.0f}% "
                  f"{r['cpu']['machine_pct']:>6.0f}/{r['cpu']['machine_pct_max']}%")
        r = paced["ratio_ours_to_bare"]
        print(f"ratio ours / bare: p50 {fmt(r['p50'], '.2f')}, p99 {fmt(r['p99'], '.2f')}")
    for key, title in (("sweep", "4."), ("sweep_unrecorded", "4b. Unrecorded relay:")):
        sweep = figures.get(key)
        if not sweep:
            continue
        print()
        print(f"{title} Concurrent sessions at {sweep['fps']} fps x {sweep['bytes'] // KB} KB, "
              f"{sweep['seconds_per_step']:.0f} s per step, limit p99 < "
              f"{sweep['p99_limit_ms']:.0f} ms (a lost tile counts as late)")
        print(f"{'relay':>10} {'sessions':>8} {'p50 ms':>7} {'p99 ms':>8} {'max ms':>8} "
              f"{'lost':>5} {'send lag p99':>12} {'relay CPU':>9} {'client CPU':>10} "
              f"{'machine CPU':>11}  result")
        steps = sweep["steps"] + ([sweep["bare_at_first_failing"]]
                                  if sweep.get("bare_at_first_failing") else [])
        for r in steps:
            if "error" in r:
                print(f"{r.get('relay', 'bare'):>10} {r['sessions']:>8}  error: {r['error']}")
                continue
            print(f"{r['relay']:>10} {r['sessions']:>8} {fmt(r['p50_ms'], '.2f'):>7} "
                  f"{fmt(r['p99_counting_lost_ms'], '.2f'):>8} {fmt(r['max_ms'], '.2f'):>8} "
                  f"{r['lost']:>5} {fmt(r['send_lag_p99_ms'], '.2f'):>12} "
                  f"{r['cpu']['relay_process_pct']:>8.0f}% {r['cpu']['client_pct']:>9.0f}% "
                  f"{r['cpu']['machine_pct']:>6.0f}/{r['cpu']['machine_pct_max']}%  "
                  f"{'under' if r['passed'] else 'OVER'}")
        limit = sweep["max_sessions_under_limit"]
        more = "+" if sweep["first_failing"] is None else ""
        print(f"=> {limit}{more} concurrent sessions stay under {sweep['p99_limit_ms']:.0f} ms "
              f"p99 on this machine (first failing: {sweep['first_failing'] or '-'}; "
              f"{sweep['stop_reason']})")
    if figures.get("error"):
        print()
        print("The run stopped with an error:\n" + figures["error"])


if __name__ == "__main__":
    if sys.argv[1:2] == ["--bare-relay"]:
        bare_relay(int(sys.argv[2]))
    elif sys.argv[1:2] == ["--client"]:
        load_client()
    else:
        orchestrate()
