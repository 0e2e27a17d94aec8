"""The session recording format, version 1: constants defined once. See docs/recording-format.md.

A recording is a directory of segment files. Each segment starts with a fixed header that
chains it to the previous segment by SHA-256, then a full-screen keyframe, then records. Each
record has a fixed 16-byte header and a payload: screen messages exactly as the relay carried
them, everything else as UTF-8 JSON. Standard library only, so an auditor can verify a
recording years later without the portal.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
import queue
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

FORMAT_VERSION = 1
MAGIC = b"FWREC\r\n\x1a"  # like PNG's: a text-mode copy or a truncated transfer breaks it visibly

# --- Segments -------------------------------------------------------------------------------
# magic 8s, version u16, flags u16, session 32s (UTF-8, zero-padded), number u32,
# previous segment SHA-256 32s, start_us u64 — network byte order.
SEGMENT_HEADER = struct.Struct("!8sHH32sI32sQ")
SEGMENT_HEADER_BYTES = SEGMENT_HEADER.size  # 88
SESSION_REF_BYTES = 32
SEGMENT_FLAG_KEYFRAME = 0x0001  # the first record is a keyframe (unset only before any screen)
SEGMENT_MAX_BYTES = 8 * 1024 * 1024
SEGMENT_MAX_US = 60_000_000
SEGMENT_SUFFIX = ".frec"
ZERO_HASH = bytes(32)
MANIFEST_NAME = "manifest.json"

# --- Records --------------------------------------------------------------------------------
# type u8, channel u8, flags u8, reserved u8 (0), payload length u32, at_us u64 (microseconds
# since the session started) — network byte order.
RECORD_HEADER = struct.Struct("!BBBBIQ")
RECORD_HEADER_BYTES = RECORD_HEADER.size  # 16
MAX_PAYLOAD_BYTES = 4 * 1024 * 1024  # far above the relay's largest message (1 MiB)

RECORD_KEYFRAME = 1  # payload: the wire message (28-byte tile header + image), a full screen
RECORD_TILE = 2  # payload: the wire message (28-byte tile header + image)
# 3 and 4 are reserved and never written; manifests count them (always 0), so they stay listed.
RECORD_RESIZE = 3
RECORD_CURSOR = 4
RECORD_INPUT = 5  # payload: JSON, the staff input message (key removed unless allowed)
RECORD_CHAT = 6  # payload: JSON, the chat message
RECORD_EVENT = 7  # payload: JSON, a control or consent event
RECORD_CHECKPOINT = 8  # payload: SHA-256 of the segment so far 32s + UTC µs since the epoch u64
RECORD_END = 9  # payload: JSON {"reason"}
RECORD_TYPES = {
    RECORD_KEYFRAME: "keyframe",
    RECORD_TILE: "tile",
    RECORD_RESIZE: "resize",
    RECORD_CURSOR: "cursor",
    RECORD_INPUT: "input",
    RECORD_CHAT: "chat",
    RECORD_EVENT: "event",
    RECORD_CHECKPOINT: "checkpoint",
    RECORD_END: "end",
}

CHANNEL_SERVER = 0
CHANNEL_CUSTOMER = 1
CHANNEL_STAFF = 2
CHANNELS = {CHANNEL_SERVER: "server", CHANNEL_CUSTOMER: "customer", CHANNEL_STAFF: "staff"}

FLAG_REPEATED = 0x01  # a keyframe repeated at a segment start, not sent again by the customer
FLAG_KEY_REMOVED = 0x02  # an input record whose key was left out (works-council rule)
RECORD_FLAGS = FLAG_REPEATED | FLAG_KEY_REMOVED

CHECKPOINT = struct.Struct("!32sQ")
CHECKPOINT_RECORD_BYTES = RECORD_HEADER_BYTES + CHECKPOINT.size  # 56
CHECKPOINT_INTERVAL_US = 5_000_000

KEY_EVENTS = {"keydown", "keyup"}


class RecordingFailed(Exception):
    """The recording could not be written; the relay must stop carrying traffic at once."""


class RecordingCorrupt(Exception):
    """A recording that is not exactly what was written: a hash, header or record is wrong."""


def segment_name(number: int) -> str:
    """The file name of segment ``number``."""
    return f"segment-{number:06d}{SEGMENT_SUFFIX}"


def recorded_input(message: dict, *, record_keys: bool = False) -> tuple[dict, bool]:
    """The form of a staff input message that is recorded, and whether its key was removed."""
    recorded = dict(message)
    if recorded.get("event") in KEY_EVENTS and not record_keys:
        # The works council allows "a key was pressed" but not which one, unless configured.
        recorded["key"] = None
        return recorded, True
    return recorded, False


def _json(value: dict) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Record:
    type: int
    channel: int
    flags: int
    at_us: int
    payload: bytes
    segment: int
    offset: int  # byte offset of the record header in its segment file

    @property
    def type_name(self) -> str:
        return RECORD_TYPES[self.type]

    def json(self) -> dict:
        """The payload of a JSON record, decoded."""
        return json.loads(self.payload)

    def checkpoint(self) -> tuple[bytes, datetime]:
        """The segment's hash so far and the UTC time a checkpoint record carries."""
        digest, utc_us = CHECKPOINT.unpack(self.payload)
        return digest, datetime.fromtimestamp(utc_us / 1_000_000, UTC)


# --- Writing --------------------------------------------------------------------------------


class _Backstage:
    """The writer's own threads: one hashes what was written, one waits for the disk.

    The relay's thread only hands bytes to the operating system. SHA-256 (which releases the
    GIL) runs on another core, and fsync never blocks the relay. The writer reads the digests
    only after ``settle()``, when the hashing thread has caught up and waits; ``drain()`` also
    waits for every fsync handed over so far.
    """

    _HASH, _NEW_SEGMENT, _FSYNC, _FSYNC_DIRECTORY, _CLOSE, _BARRIER, _STOP = range(7)

    def __init__(self):
        self.segment = hashlib.sha256()
        self.error: OSError | None = None
        self._stopped = False
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._hashing: queue.SimpleQueue = queue.SimpleQueue()
        self._syncing: queue.SimpleQueue = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._run, args=(self._hashing,), daemon=True,
                             name="recording-hash"),
            threading.Thread(target=self._run, args=(self._syncing,), daemon=True,
                             name="recording-fsync"),
        ]
        for thread in self._threads:
            thread.start()

    # Small records are handed over in batches: waking the thread for each would cost more
    # than hashing them here.
    HAND_OVER_BYTES = 64 * 1024

    def hash(self, parts: tuple[bytes, ...]) -> None:
        self._pending.extend(parts)
        self._pending_bytes += sum(map(len, parts))
        if self._pending_bytes >= self.HAND_OVER_BYTES:
            self._hand_over()

    def _hand_over(self) -> None:
        if self._pending:
            self._hashing.put((self._HASH, self._pending))
            self._pending, self._pending_bytes = [], 0

    def new_segment(self) -> None:
        self._hand_over()
        self._hashing.put((self._NEW_SEGMENT, None))

    def fsync(self, file) -> None:
        self._syncing.put((self._FSYNC, file))

    def close_file(self, file) -> None:
        self._syncing.put((self._CLOSE, file))

    def fsync_directory(self, directory: Path) -> None:
        self._syncing.put((self._FSYNC_DIRECTORY, directory))

    def settle(self) -> None:
        """Return once everything written so far is hashed."""
        self._hand_over()
        self._wait(self._hashing)

    def drain(self) -> None:
        """Return once everything written so far is hashed, fsynced and closed."""
        self.settle()
        self._wait(self._syncing)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        for work, thread in zip((self._hashing, self._syncing), self._threads, strict=True):
            work.put((self._STOP, None))
            if thread is not threading.current_thread():
                thread.join()

    def _wait(self, work: queue.SimpleQueue) -> None:
        if self._stopped:
            return  # the writer failed or closed: nothing is waited for any more
        done = threading.Event()
        work.put((self._BARRIER, done))
        done.wait()

    def _run(self, work: queue.SimpleQueue) -> None:
        while True:
            kind, item = work.get()
            if kind == self._HASH:
                small = bytearray()  # hashed together: hashlib lets go of the GIL > 2 KiB
                for part in item:
                    if len(part) < 4096:
                        small += part
                        continue
                    if small:
                        self.segment.update(small)
                        small = bytearray()
                    self.segment.update(part)
                if small:
                    self.segment.update(small)
            elif kind == self._NEW_SEGMENT:
                self.segment = hashlib.sha256()
            elif kind in (self._FSYNC, self._FSYNC_DIRECTORY, self._CLOSE):
                try:
                    if kind == self._CLOSE:
                        item.close()
                    elif self.error is not None:
                        pass  # failed already: the writer reports the first error
                    elif kind == self._FSYNC:
                        os.fsync(item.fileno())
                    else:
                        _fsync_directory(item)
                except OSError as exc:
                    self.error = self.error or exc  # the writer fails on its next call
            elif kind == self._BARRIER:
                item.set()
            else:
                return


class RecordingWriter:
    """Writes one session's recording into an empty directory; any OSError is RecordingFailed."""

    # How bytes are handed over (no effect on the format): a payload this large goes out with its
    # header in one writev instead of being copied behind it.
    _JOIN_BELOW_BYTES = 16 * 1024

    def __init__(
        self,
        directory: str | os.PathLike,
        session_ref: str,
        *,
        clock: Callable[[], datetime] = _utc_now,
        max_segment_bytes: int = SEGMENT_MAX_BYTES,
        max_segment_us: int = SEGMENT_MAX_US,
    ):
        encoded = session_ref.encode()
        if not encoded or len(encoded) > SESSION_REF_BYTES or b"\0" in encoded:
            raise ValueError(f"session reference must be 1–{SESSION_REF_BYTES} bytes")
        self.directory = Path(directory)
        self.session_ref = session_ref
        self._session = encoded
        self._clock = clock
        self._max_bytes = max_segment_bytes
        self._max_us = max_segment_us
        self._backstage = _Backstage()
        self._file = None
        self._previous_hash = ZERO_HASH
        self._number = -1
        self._size = 0
        self._segment_start_us = 0
        self._records_after_opening = 0  # records the segment holds besides its opening keyframe
        self._last_keyframe: bytes | None = None
        self._last_us = 0
        self._last_checkpoint_us = 0
        self._closed = False
        self._ended = False
        self._failed = False
        try:
            private_directory(self.directory)
            if any(self.directory.glob(f"*{SEGMENT_SUFFIX}")):
                raise FileExistsError(f"{self.directory} already holds a recording")
        except OSError as exc:
            self._fail(exc)

    # Public record methods: each returns once the record is handed to the operating system.

    def keyframe(self, wire: bytes, at_us: int) -> None:
        """Record a full-screen tile exactly as relayed; it also opens later segments."""
        self._last_keyframe = bytes(wire)
        self._record(RECORD_KEYFRAME, CHANNEL_CUSTOMER, 0, at_us, self._last_keyframe)

    def tile(self, wire: bytes, at_us: int) -> None:
        """Record a screen tile exactly as relayed."""
        self._record(RECORD_TILE, CHANNEL_CUSTOMER, 0, at_us, bytes(wire))

    def input(self, message: dict, at_us: int, *, record_keys: bool = False) -> None:
        """Record a staff input message; keys only when ``record_keys`` is allowed."""
        recorded, removed = recorded_input(message, record_keys=record_keys)
        flags = FLAG_KEY_REMOVED if removed else 0
        self._record(RECORD_INPUT, CHANNEL_STAFF, flags, at_us, _json(recorded))

    def chat(self, message: dict, at_us: int, *, channel: int) -> None:
        """Record a chat message from the customer or the staff member."""
        self._record(RECORD_CHAT, channel, 0, at_us, _json(message))

    def event(self, message: dict, at_us: int, *, channel: int = CHANNEL_SERVER) -> None:
        """Record a control or consent event."""
        self._record(RECORD_EVENT, channel, 0, at_us, _json(message))

    def tick(self, at_us: int) -> None:
        """Write a checkpoint if one is due; the relay calls this when the session is idle."""
        self._guard()
        if at_us - self._last_checkpoint_us >= CHECKPOINT_INTERVAL_US and self._file:
            self._checkpoint(max(at_us, self._last_us))

    def end(self, reason: str, at_us: int) -> None:
        """Record the end of the session and close the recording."""
        self._guard()
        if self._file is not None:
            try:
                # The final checkpoint comes before the end record: nothing follows the end.
                self._checkpoint(max(at_us, self._last_us))
            except OSError as exc:
                self._fail(exc)
        self._record(RECORD_END, CHANNEL_SERVER, 0, at_us, _json({"reason": reason}))
        self._ended = True
        self.close()

    def close(self) -> None:
        """Write a last checkpoint, fsync and close; safe to call twice."""
        if self._closed or self._failed:
            return
        self._closed = True
        try:
            if self._file is not None:
                self._close_segment()
            self._backstage.drain()  # every fsync done: durable when close() returns
            if self._backstage.error is not None:
                raise self._backstage.error
        except OSError as exc:
            self._fail(exc)
        self._backstage.stop()

    def manifest(self) -> dict:
        """The manifest of what has been written so far, read back and verified from disk."""
        return build_manifest(self.directory)

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # Internals.

    def _guard(self) -> None:
        if self._backstage.error is not None and not self._failed:
            self._fail(self._backstage.error)  # an fsync failed after the last call returned
        if self._failed:
            raise RecordingFailed("the recording failed earlier; nothing more can be written")
        if self._closed:
            raise RecordingFailed("the recording is closed")

    def _fail(self, exc: OSError) -> None:
        self._failed = True
        self._backstage.stop()
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass  # already failing; the first error is the one to report
            self._file = None
        raise RecordingFailed(f"cannot write the recording in {self.directory}: {exc}") from exc

    def _record(self, kind: int, channel: int, flags: int, at_us: int, payload: bytes) -> None:
        self._guard()
        if channel not in CHANNELS:
            raise ValueError(f"unknown channel {channel}")
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise ValueError(f"payload of {len(payload)} bytes above {MAX_PAYLOAD_BYTES}")
        if at_us < self._last_us:
            raise ValueError(f"time went backwards: {at_us} < {self._last_us}")
        try:
            size = RECORD_HEADER_BYTES + len(payload)
            due = at_us - self._last_checkpoint_us >= CHECKPOINT_INTERVAL_US
            opened = False
            if self._file is None:
                self._open_segment(at_us, opening=kind)
                opened = True
            elif self._records_after_opening and (
                # Room for a due checkpoint, this record and the closing checkpoint.
                self._size + size + CHECKPOINT_RECORD_BYTES * (1 + due) > self._max_bytes
                or at_us - self._segment_start_us >= self._max_us
            ):
                self._close_segment()  # its closing checkpoint stands in for a due one
                self._open_segment(at_us, opening=kind)
                opened = True
            elif due:
                self._checkpoint(at_us)
            self._write_record(kind, channel, flags, at_us, payload)
            if not (opened and kind == RECORD_KEYFRAME):
                # A segment holds at least one record besides its opening keyframe, so a
                # record larger than the limit cannot make the writer roll over forever.
                self._records_after_opening += 1
        except OSError as exc:
            self._fail(exc)

    def _open_segment(self, at_us: int, *, opening: int) -> None:
        self._number += 1
        repeat = opening != RECORD_KEYFRAME and self._last_keyframe is not None
        header_flags = SEGMENT_FLAG_KEYFRAME if (opening == RECORD_KEYFRAME or repeat) else 0
        path = self.directory / segment_name(self._number)
        self._file = private_file(path, buffering=0)  # kept open across records
        # So that the new file's name survives a power loss too; on the fsync thread, before
        # any later fsync of the file's data.
        self._backstage.fsync_directory(self.directory)
        self._backstage.new_segment()
        self._size = 0
        self._segment_start_us = at_us
        self._records_after_opening = 0
        self._write(SEGMENT_HEADER.pack(
            MAGIC, FORMAT_VERSION, header_flags, self._session, self._number,
            self._previous_hash, at_us,
        ))
        if repeat:
            self._write_record(RECORD_KEYFRAME, CHANNEL_CUSTOMER, FLAG_REPEATED, at_us,
                               self._last_keyframe)

    def _close_segment(self) -> None:
        # Every segment ends on a checkpoint (or the end record right after the final one), so
        # each closed file is verifiable on its own.
        if self._ended:
            self._backstage.fsync(self._file)
        else:
            self._checkpoint(self._last_us)
        self._backstage.close_file(self._file)  # after its fsync, on the fsync thread
        self._file = None
        self._backstage.settle()  # the whole segment hashed, for the next segment's header
        self._previous_hash = self._backstage.segment.digest()

    def _checkpoint(self, at_us: int) -> None:
        utc_us = int(self._clock().timestamp() * 1_000_000)
        self._backstage.settle()  # the hash of the segment up to the checkpoint
        if self._backstage.error is not None:
            raise self._backstage.error
        payload = CHECKPOINT.pack(self._backstage.segment.digest(), utc_us)
        self._write_record(RECORD_CHECKPOINT, CHANNEL_SERVER, 0, at_us, payload)
        self._last_checkpoint_us = at_us
        self._backstage.fsync(self._file)  # the relay goes on while the disk catches up

    def _write_record(self, kind: int, channel: int, flags: int, at_us: int,
                      payload: bytes) -> None:
        header = RECORD_HEADER.pack(kind, channel, flags, 0, len(payload), at_us)
        if len(payload) < self._JOIN_BELOW_BYTES:
            self._write(header + payload)  # a small copy costs less than a second buffer
        else:
            self._write(header, payload)  # a screen image is not copied
        self._last_us = at_us

    def _write(self, *parts: bytes) -> None:
        """Hand ``parts`` to the operating system in order (one system call), then hash them."""
        fd = self._file.fileno()
        total = sum(map(len, parts))
        written = os.write(fd, parts[0]) if len(parts) == 1 else os.writev(fd, parts)
        if written < total:  # a short write (a signal, a nearly full disk): the rest in a loop
            rest = memoryview(b"".join(parts))[written:]
            while rest:
                written = os.write(fd, rest)
                if not written:
                    raise OSError("short write")
                rest = rest[written:]
        self._backstage.hash(parts)  # bytes are immutable: hashed later, in order, elsewhere
        self._size += total


# Working copies hold the customer's screen in clear: the portal's user alone may read them,
# whatever the process's umask (modes are set explicitly, not requested from the umask).
PRIVATE_FILE_MODE = 0o600
PRIVATE_DIRECTORY_MODE = 0o700


def private_directory(directory: Path) -> None:
    """Create ``directory`` and its missing parents with mode 0700; the leaf is 0700 anyway."""
    missing = [p for p in (directory, *directory.parents) if not p.exists()]
    for path in reversed(missing):
        try:
            path.mkdir(mode=PRIVATE_DIRECTORY_MODE)
        except FileExistsError:
            pass
        else:
            os.chmod(path, PRIVATE_DIRECTORY_MODE)
    os.chmod(directory, PRIVATE_DIRECTORY_MODE)


def private_file(path: Path, *, replace: bool = False, buffering: int = -1):
    """A new file opened for binary writing, mode 0600 (``replace``: truncate an existing one
    instead of refusing it)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if replace else os.O_EXCL)
    fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0), PRIVATE_FILE_MODE)
    try:
        os.fchmod(fd, PRIVATE_FILE_MODE)
        return os.fdopen(fd, "wb", buffering=buffering)
    except BaseException:
        os.close(fd)
        raise


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- Reading --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    number: int
    name: str
    flags: int
    session_ref: str
    previous_hash: bytes
    start_us: int


class DirectorySource:
    """Segments as files in a directory: the relay's working copy."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self.names = sorted(path.name for path in self.directory.glob(f"*{SEGMENT_SUFFIX}"))

    def read(self, name: str) -> bytes:
        return (self.directory / name).read_bytes()

    def __str__(self) -> str:
        return str(self.directory)


class SegmentSource:
    """Where a reader finds segments: ``names`` in order and ``read(name)``; e.g. an archive."""

    names: list[str]

    def read(self, name: str) -> bytes:  # pragma: no cover - an interface
        raise NotImplementedError


class RecordingReader:
    """Reads and verifies a recording in order; ``truncated`` says if it ended early.

    ``source`` is a directory or any object with ``names`` (segment file names) and
    ``read(name)`` (a segment's bytes), such as a decrypting archive reader.
    """

    def __init__(self, source: str | os.PathLike | SegmentSource, *,
                 manifest: dict | None = None):
        self.source = (DirectorySource(source) if isinstance(source, str | os.PathLike)
                       else source)
        self.manifest = manifest
        self.truncated = False
        self.truncated_at: tuple[str, int] | None = None  # (segment file, valid bytes)
        self.final_hash: bytes | None = None
        self.ended = False
        self.session_ref: str | None = None
        # (bytes, SHA-256 hex) of each segment read by records(), for the manifest.
        self.segment_digests: list[tuple[int, str]] = []
        self.names = list(self.source.names)
        if not self.names:
            raise RecordingCorrupt(f"no segments in {self.source}")
        for number, name in enumerate(self.names):
            if name != segment_name(number):
                raise RecordingCorrupt(f"segment {segment_name(number)} is missing")
        if manifest is not None:
            names = [segment["name"] for segment in manifest["segments"]]
            if names != self.names:
                raise RecordingCorrupt("the segment files differ from the manifest's list")

    def records(self) -> Iterator[Record]:
        """Every record in order, checking the hash chain, the checkpoints and the manifest."""
        running = hashlib.sha256()  # of the segment so far: what its checkpoints carry
        previous_hash = ZERO_HASH
        session = None
        last_us = 0
        self.truncated, self.truncated_at, self.ended = False, None, False
        self.segment_digests = []
        for number, path in enumerate(self.names):
            data, segment_hash = self._read(number, path)
            self.segment_digests.append((len(data), segment_hash.hex()))
            running = hashlib.sha256()
            last = number == len(self.names) - 1
            segment = _parse_segment_header(path, data, number, truncated_ok=last)
            if segment is None:  # a crash while the header was being written
                self._truncate(path, 0)
                running.update(data)
                break
            if segment.previous_hash != previous_hash:
                raise RecordingCorrupt(f"{path}: the hash of the previous segment differs")
            if session is not None and segment.session_ref != session:
                raise RecordingCorrupt(f"{path}: another session's segment")
            session = self.session_ref = segment.session_ref
            running.update(data[:SEGMENT_HEADER_BYTES])
            position = SEGMENT_HEADER_BYTES
            record = None
            for record, end in _parse_records(path, data, number, truncated_ok=last):
                if self.ended:
                    raise RecordingCorrupt(f"{path}@{record.offset}: a record after the end")
                if record.at_us < last_us:
                    raise RecordingCorrupt(f"{path}@{record.offset}: time goes backwards")
                if position == SEGMENT_HEADER_BYTES:
                    _check_opening(segment, record)
                if record.type == RECORD_CHECKPOINT:
                    digest, _ = record.checkpoint()
                    if digest != running.digest():
                        raise RecordingCorrupt(
                            f"{path}@{record.offset}: checkpoint hash mismatch"
                        )
                running.update(data[position:end])
                position, last_us = end, record.at_us
                self.ended = record.type == RECORD_END
                yield record
            if position < len(data):
                self._truncate(path, position)
                break
            if not last and (record is None or record.type != RECORD_CHECKPOINT):
                raise RecordingCorrupt(f"{path}: a closed segment must end on a checkpoint")
            previous_hash = segment_hash
        self.final_hash = running.digest()
        if self.manifest is not None and not self.truncated:
            if self.manifest["final_hash"] != self.final_hash.hex():
                raise RecordingCorrupt("the final hash differs from the manifest")

    def verify(self) -> dict:
        """Read everything; return the manifest of what was found (RecordingCorrupt if wrong)."""
        return build_manifest(self.source, reader=self)

    def seek(self, at_us: int) -> Iterator[Record]:
        """The records from the last keyframe at or before ``at_us`` onwards, via the manifest."""
        manifest = self.manifest or build_manifest(self.source)
        keyframes = manifest["keyframes"]
        index = bisect.bisect_right([frame["at_us"] for frame in keyframes], at_us) - 1
        # Start at an original keyframe: a repeated one lacks the tiles drawn since.
        while index > 0 and keyframes[index].get("repeated"):
            index -= 1
        start_segment, start_offset = (
            (keyframes[index]["segment"], keyframes[index]["offset"]) if index >= 0
            else (0, SEGMENT_HEADER_BYTES)
        )
        for number in range(start_segment, len(self.names)):
            path = self.names[number]
            # Checked against the manifest's whole-segment hashes, since reading starts mid-way.
            data, _ = self._read(number, path, manifest=manifest)
            if len(data) < SEGMENT_HEADER_BYTES:
                return
            offset = start_offset if number == start_segment else SEGMENT_HEADER_BYTES
            for record, _ in _parse_records(path, data, number, truncated_ok=True, start=offset):
                yield record

    def segment(self, number: int) -> bytes:
        """One whole segment's bytes, checked against the manifest when there is one."""
        return self._read(number, self.names[number])[0]

    def _read(self, number: int, name: str, *,
              manifest: dict | None = None) -> tuple[bytes, bytes]:
        """A segment's bytes and SHA-256 (hashed once), checked against the manifest if any."""
        try:
            data = self.source.read(name)
        except OSError as exc:
            raise RecordingCorrupt(f"{name}: cannot be read: {exc}") from exc
        digest = hashlib.sha256(data).digest()
        manifest = manifest or self.manifest
        if manifest is not None:
            expected = manifest["segments"][number]
            if digest.hex() != expected["sha256"] or len(data) != expected["bytes"]:
                raise RecordingCorrupt(f"{name}: SHA-256 differs from the manifest")
        return data, digest

    def _truncate(self, name: str, valid: int) -> None:
        self.truncated = True
        self.truncated_at = (name, valid)


def _parse_segment_header(path: str, data: bytes, number: int, *,
                          truncated_ok: bool) -> Segment | None:
    if len(data) < SEGMENT_HEADER_BYTES:
        if truncated_ok and MAGIC.startswith(data[: len(MAGIC)]):
            return None
        raise RecordingCorrupt(f"{path}: shorter than a segment header")
    magic, version, flags, session, seg_number, previous, start_us = (
        SEGMENT_HEADER.unpack_from(data)
    )
    if magic != MAGIC:
        raise RecordingCorrupt(f"{path}: not a recording segment")
    if version != FORMAT_VERSION:
        raise RecordingCorrupt(f"{path}: format version {version}")
    if flags & ~SEGMENT_FLAG_KEYFRAME:
        raise RecordingCorrupt(f"{path}: unknown segment flags {flags:#x}")
    if seg_number != number:
        raise RecordingCorrupt(f"{path}: header says segment {seg_number}")
    if number == 0 and previous != ZERO_HASH:
        raise RecordingCorrupt(f"{path}: the first segment names a previous one")
    ref = session.rstrip(b"\0")
    if not ref or b"\0" in ref or session[len(ref):].strip(b"\0"):
        raise RecordingCorrupt(f"{path}: bad session reference")
    try:
        session_ref = ref.decode()
    except UnicodeDecodeError:
        raise RecordingCorrupt(f"{path}: bad session reference") from None
    return Segment(number, path, flags, session_ref, previous, start_us)


def _check_opening(segment: Segment, record: Record) -> None:
    if record.at_us != segment.start_us:
        raise RecordingCorrupt(f"{segment.name}: start time differs from the first record")
    if bool(segment.flags & SEGMENT_FLAG_KEYFRAME) != (record.type == RECORD_KEYFRAME):
        raise RecordingCorrupt(f"{segment.name}: the opening keyframe does not match")


def _parse_records(path: str, data: bytes, number: int, *, truncated_ok: bool,
                   start: int = SEGMENT_HEADER_BYTES) -> Iterator[tuple[Record, int]]:
    position = start
    while position < len(data):
        if len(data) - position < RECORD_HEADER_BYTES:
            if truncated_ok:
                return
            raise RecordingCorrupt(f"{path}@{position}: a cut-off record header")
        kind, channel, flags, reserved, length, at_us = RECORD_HEADER.unpack_from(data, position)
        where = f"{path}@{position}"
        if kind not in RECORD_TYPES or channel not in CHANNELS or reserved != 0:
            raise RecordingCorrupt(f"{where}: bad record header")
        if flags & ~RECORD_FLAGS or length > MAX_PAYLOAD_BYTES:
            raise RecordingCorrupt(f"{where}: bad record header")
        end = position + RECORD_HEADER_BYTES + length
        if end > len(data):
            if truncated_ok:
                return
            raise RecordingCorrupt(f"{where}: a cut-off record")
        payload = data[position + RECORD_HEADER_BYTES:end]
        if kind == RECORD_CHECKPOINT and length != CHECKPOINT.size:
            raise RecordingCorrupt(f"{where}: bad checkpoint")
        yield Record(kind, channel, flags, at_us, payload, number, position), end
        position = end


# --- The manifest ---------------------------------------------------------------------------


def build_manifest(source: str | os.PathLike | SegmentSource, *,
                   reader: RecordingReader | None = None,
                   visit: Callable[[Record], None] | None = None) -> dict:
    """Read and verify a recording; return its manifest (deterministic with ``manifest_bytes``).

    ``visit`` is called with every record on the way, so callers need not read twice.
    """
    reader = reader or RecordingReader(source)
    counts = dict.fromkeys(RECORD_TYPES.values(), 0)
    segments = [
        {"name": name, "number": number, "bytes": 0, "sha256": "", "first_us": None,
         "last_us": None, "records": dict.fromkeys(RECORD_TYPES.values(), 0)}
        for number, name in enumerate(reader.names)
    ]
    keyframes = []
    duration = 0
    for record in reader.records():
        if visit is not None:
            visit(record)
        segment = segments[record.segment]
        if segment["first_us"] is None:
            segment["first_us"] = record.at_us
        segment["last_us"] = record.at_us
        segment["records"][record.type_name] += 1
        counts[record.type_name] += 1
        duration = record.at_us
        if record.type == RECORD_KEYFRAME:
            # A repeated keyframe (segment start) lacks the tiles drawn since the original: a
            # player seeking exactly should start at the last keyframe that is not repeated.
            keyframes.append({"segment": record.segment, "offset": record.offset,
                              "at_us": record.at_us,
                              "repeated": bool(record.flags & FLAG_REPEATED)})
    # Each segment was read once, by records(): its size and hash come from those bytes. A
    # segment after a cut one (never written by our writer) is corruption, found above.
    for segment, (size, digest) in zip(segments, reader.segment_digests, strict=False):
        segment["bytes"], segment["sha256"] = size, digest
    return {
        "format": "fernwartung-recording",
        "version": FORMAT_VERSION,
        "session": reader.session_ref,
        "segments": segments,
        "keyframes": keyframes,
        "duration_us": duration,
        "counts": counts,
        "final_hash": reader.final_hash.hex(),
        "ended": reader.ended,
        "truncated": (
            {"segment": reader.truncated_at[0], "valid_bytes": reader.truncated_at[1]}
            if reader.truncated else None
        ),
    }


def manifest_bytes(manifest: dict) -> bytes:
    """The canonical bytes of a manifest: the form that is hashed and signed."""
    return json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def write_manifest(directory: str | os.PathLike) -> dict:
    """Build the manifest of a finished recording and store it atomically beside the segments."""
    directory = Path(directory)
    manifest = build_manifest(directory)
    temporary = directory / f".{MANIFEST_NAME}.tmp"
    with private_file(temporary, replace=True) as file:
        file.write(manifest_bytes(manifest))
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, directory / MANIFEST_NAME)
    _fsync_directory(directory)
    return manifest
