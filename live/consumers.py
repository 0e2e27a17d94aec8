"""The live session's sockets: customer, staff member and observer. See docs/protocol.md.

Thin consumers: authenticate, check each message against the protocol, call an action, and
relay through the channel layer. Screen tiles are checked (header only) and forwarded without
touching the database: the relay is the hot path.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections import deque

from asgiref.sync import sync_to_async
from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.core.cache import cache

from audit.event_types import EventType
from audit.events import Actor
from consent import actions as consent_actions
from consent.models import control_granted
from portal import client_ip, counters, roles
from portal.staff_access import CLOSE_NOT_VERIFIED, verified_staff_user
from portal.staff_sockets import SignInWatch
from recordings import actions as recording_actions
from recordings import format as recording
from sessions_app import actions, protocol
from sessions_app.live import (
    customer_lost_message,
    grace_ends_at,
    grace_fields,
    session_group,
)
from sessions_app.models import ChatMessage, InvalidTransition, SessionState, SupportSession

HISTORY_LINES = 50
KEYFRAME_REQUEST_INTERVAL = 1.0  # seconds between one viewer's keyframe requests
INPUT_RACE_SECONDS = 2.0  # input this soon after control ended or a pause is dropped quietly
BYTE_BURST_SECONDS = 2  # the byte rate may be exceeded in bursts of this many seconds' worth
BUDGET_FLUSH_BYTES = 1024 * 1024  # a connection adds to its session's byte count in steps of this

logger = logging.getLogger(__name__)


def viewers_group(session_id: int) -> str:
    return f"session-{session_id}-viewers"


def customer_group(session_id: int) -> str:
    return f"session-{session_id}-customer"


class RateLimit:
    """Two token buckets, refilled from one clock reading (this is the relay's hot path): at
    most ``messages`` messages per second (bursts the same) and ``byte_rate`` bytes per second
    (bursts up to ``byte_burst``)."""

    __slots__ = ("message_rate", "byte_rate", "byte_burst", "messages", "bytes", "stamp")

    def __init__(self, messages: int, byte_rate: int, byte_burst: int):
        self.message_rate, self.byte_rate, self.byte_burst = messages, byte_rate, byte_burst
        self.messages, self.bytes = float(messages), float(byte_burst)
        self.stamp = time.monotonic()

    def refuse(self, size: int) -> int:
        """Take one message of ``size`` bytes: 0 if allowed, else the close code."""
        now = time.monotonic()
        elapsed, self.stamp = now - self.stamp, now
        messages = self.messages + elapsed * self.message_rate
        self.messages = messages = messages if messages < self.message_rate else (
            self.message_rate)
        available = self.bytes + elapsed * self.byte_rate
        self.bytes = available = available if available < self.byte_burst else self.byte_burst
        if messages < 1:
            return protocol.CLOSE_TOO_FAST
        if available < size:
            return protocol.CLOSE_BYTE_LIMIT
        self.messages, self.bytes = messages - 1, available - size
        return 0


def budget_key(session_id: int) -> str:
    return f"live-bytes:{session_id}"


def _add_session_bytes(session_id: int, count: int) -> int:
    """Add to the session's byte count, shared by every daphne process; return the total."""
    return counters.count(budget_key(session_id), BUDGET_KEEP_SECONDS, by=count)


def _session_bytes(session_id: int) -> int:
    return cache.get(budget_key(session_id), 0)


BUDGET_KEEP_SECONDS = 2 * 24 * 3600  # longer than any session: a slot never spans midnight
add_session_bytes = sync_to_async(_add_session_bytes, thread_sensitive=False)
session_bytes = sync_to_async(_session_bytes, thread_sensitive=False)


@database_sync_to_async
def _audit_refusal(session_ref: str, role: str, code: int, reason: str, actor, ip):
    # ``actor`` is called here: naming a staff actor reads their roles from the database.
    actions.record_live_refusal(session_ref=session_ref, role=role, code=code, reason=reason,
                                actor=actor(), ip=ip)


@database_sync_to_async
def _chat_history(session: SupportSession) -> list[dict]:
    lines = ChatMessage.objects.filter(session=session).order_by("-sent_at", "-pk")[:HISTORY_LINES]
    return [chat_json(line) for line in reversed(lines)]


def chat_json(line: ChatMessage) -> dict:
    return {"type": "chat", "from": line.sender, "name": line.sender_label, "text": line.text,
            "at": line.sent_at.isoformat()}


@database_sync_to_async
def _live_state(session: SupportSession) -> dict:
    session.refresh_from_db()
    return {"state": session.state, "paused": session.sharing_paused,
            "control": control_granted(session),
            "control_pending": consent_actions.control_pending(session),
            "customer_present": bool(session.customer_channel),
            **grace_fields(grace_ends_at(state=session.state,
                                         customer_channel=session.customer_channel,
                                         customer_lost_at=session.customer_lost_at))}


@database_sync_to_async
def _session_now(session_id: int) -> dict | None:
    """What the state re-check reads: one row by primary key, four columns."""
    return SupportSession.objects.filter(pk=session_id).values(
        "state", "customer_channel", "customer_lost_at", "end_reason"
    ).first()


def limits() -> dict:
    return {"heartbeat_seconds": settings.LIVE_HEARTBEAT_SECONDS,
            "max_message_bytes": settings.LIVE_MAX_MESSAGE_BYTES,
            "max_messages_per_second": settings.LIVE_MAX_MESSAGES_PER_SECOND,
            "max_bytes_per_second": settings.LIVE_MAX_BYTES_PER_SECOND}


class LiveConsumer(AsyncWebsocketConsumer):
    """What all three sockets share: limits, schema checks, refusals, the session's events."""

    role = ""
    counts_session_bytes = False  # the customer's socket: what it receives is recorded

    async def dispatch(self, message):
        # Channels closes stale database connections before every message, one hop to the
        # sync thread each time: on the relay that is three hops per tile. These consumers
        # touch the database only through database_sync_to_async, which does it itself.
        handler = getattr(self, get_handler_name(message), None)
        try:
            if handler is None:
                raise ValueError(f"no handler for message type {message['type']}")
            await handler(message)
        except StopConsumer:
            raise
        except Exception as error:
            # Nothing may escape: Channels would close with 1011 and skip ``disconnect``,
            # leaving the session's customer slot taken and its recording open.
            await self.unexpected(error, message.get("type", ""))
            if message.get("type") == "websocket.disconnect":
                raise StopConsumer() from None

    async def unexpected(self, error: Exception, message_type: str) -> None:
        """An exception from a handler: log it, then refuse with 4422 (audited, as any bad
        message); the close runs the normal disconnect path."""
        logger.error("live socket (%s): %s while handling %s", self.role,
                     type(error).__name__, message_type, exc_info=error)
        if message_type == "websocket.disconnect" or getattr(self, "closing", False):
            return
        try:
            await self.refuse(protocol.CLOSE_BAD_MESSAGE, f"unexpected {type(error).__name__}")
        except Exception:
            logger.exception("live socket (%s): refusing failed", self.role)
            await self.close(code=protocol.CLOSE_BAD_MESSAGE)

    async def websocket_connect(self, message):
        self.session: SupportSession | None = None
        self.ended = False
        self.sent_end = False  # this socket asked to end: what was in flight is dropped
        self.closing = False
        self.rate = RateLimit(settings.LIVE_MAX_MESSAGES_PER_SECOND,
                              settings.LIVE_MAX_BYTES_PER_SECOND,
                              settings.LIVE_MAX_BYTES_PER_SECOND * BYTE_BURST_SECONDS)
        self.unflushed_bytes = 0
        self.ip = client_ip.for_scope(self.scope).ip
        self.groups_joined: list[str] = []
        self.paused = False
        self.control = False
        self.input_stopped_at = 0.0
        self.customer_present = False
        self.customer_news = 0  # channel-layer messages about the customer's connection
        await super().websocket_connect(message)

    # --- Sending and refusing ---------------------------------------------------------------

    async def send_json(self, data: dict) -> None:
        await self.send(text_data=json.dumps(data, separators=(",", ":")))

    def actor(self) -> Actor:
        return Actor.anonymous("live socket")

    async def refuse(self, code: int, reason: str, *,
                     session: SupportSession | None = None) -> None:
        """Close with ``code``, audit it, and tell the other party of the session.

        ``session`` names the session of a connection refused before it joined one (the
        customer's token was found, but is used or the session has a customer already).
        """
        if self.closing:
            return
        self.closing = True
        session = session or self.session
        try:
            reference = session.reference if session else ""
            await _audit_refusal(reference, self.role, code, reason, self.actor, self.ip)
            if session is not None:
                await self.broadcast({"type": "peer_refused", "role": self.role, "code": code,
                                      "reason": reason}, session=session)
            await self.send_json({"type": "error", "code": code, "reason": reason})
        finally:
            await self.close(code=code)  # whatever failed above, the socket closes

    async def broadcast(self, message: dict, *, include_self: bool = False,
                        session: SupportSession | None = None) -> None:
        """A JSON message to every socket of the session (not this one, unless asked)."""
        session = session or self.session
        await self.channel_layer.group_send(session_group(session.pk), {
            "type": "live.message", "message": message,
            "exclude": "" if include_self else self.channel_name,
        })

    async def join(self, *groups: str) -> None:
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
            self.groups_joined.append(group)

    async def disconnect(self, code):
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def guarded(self, step) -> None:
        """Await one step of the disconnect path; log a failure and go on with the next."""
        try:
            await step
        except Exception:
            logger.exception("live socket (%s): a disconnect step failed", self.role)

    async def flush_session_bytes(self) -> int:
        """Add this connection's uncounted bytes to the session's count; return the total."""
        count, self.unflushed_bytes = self.unflushed_bytes, 0
        return await add_session_bytes(self.session.pk, count)

    # --- Receiving --------------------------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None):
        if self.closing:
            return
        size = len(bytes_data) if bytes_data is not None else len(text_data or "")
        try:
            if size > settings.LIVE_MAX_MESSAGE_BYTES:
                raise protocol.ProtocolError(protocol.CLOSE_TOO_LARGE, "message too large")
            refused = self.rate.refuse(size)
            if refused:
                raise protocol.ProtocolError(refused, "too many messages"
                                             if refused == protocol.CLOSE_TOO_FAST
                                             else "too many bytes per second")
            if self.counts_session_bytes:
                # Counted locally, added to the shared count once a MiB: cheap per tile.
                self.unflushed_bytes += size
                if (self.unflushed_bytes >= BUDGET_FLUSH_BYTES and await
                        self.flush_session_bytes() > settings.LIVE_MAX_SESSION_BYTES):
                    raise protocol.ProtocolError(protocol.CLOSE_BYTE_LIMIT,
                                                 "session byte budget used up")
            if self.ended:
                if self.sent_end:
                    return  # sent before this side's own `end` arrived: dropped, the close follows
                raise protocol.ProtocolError(protocol.CLOSE_NOT_ALLOWED, "session has ended")
            if bytes_data is not None:
                await self.receive_screen(bytes_data)
                return
            message = protocol.parse_control(text_data, role=self.role,
                                             max_bytes=settings.LIVE_MAX_MESSAGE_BYTES)
            if not await self.before_client_message(message):
                return
            await getattr(self, f"on_{message['type']}")(message)
        except protocol.ProtocolError as refused:
            await self.refuse(refused.code, refused.reason)
        except (actions.SessionRuleError, consent_actions.ConsentRefused,
                InvalidTransition) as refused:
            await self.send_json({"type": "error", "code": 0, "reason": str(refused)})

    async def before_client_message(self, message: dict) -> bool:
        """A hook before a client's control message is acted on; False drops it."""
        return True

    async def receive_screen(self, data: bytes) -> None:
        raise protocol.ProtocolError(protocol.CLOSE_BAD_MESSAGE, "binary messages not allowed")

    async def on_heartbeat(self, message: dict) -> None:
        self.last_seen = time.monotonic()
        await self.send_json({"type": "heartbeat", "server_ms": int(time.time() * 1000)})

    # --- The session's events, from the channel layer ---------------------------------------

    async def live_message(self, event: dict) -> None:
        if event.get("exclude") == self.channel_name or self.closing:
            return
        message = event["message"]
        if message["type"] == "sharing":
            self.paused = message["paused"]
            if message["paused"]:
                self.input_stopped_at = time.monotonic()
        elif message["type"] == "control":
            if self.control and not message["granted"]:
                self.input_stopped_at = time.monotonic()
            self.control = message["granted"]
        elif message["type"] == "peer" and message["role"] == "customer":
            self.customer_present = message["present"]
            self.customer_news += 1
        if not await self.before_forward(message):
            return
        await self.send_json(message)
        await self.after_message(message)

    async def before_forward(self, message: dict) -> bool:
        """A hook before a session message goes out on this socket; False holds it back."""
        return True

    async def after_message(self, message: dict) -> None:
        """A hook for what a socket does once it has passed a session message on."""

    async def session_state(self, event: dict) -> None:
        """From sessions_app.live (or the state re-check): the session changed state; once
        over, every socket closes."""
        state = event["data"]["state"]
        if state != SessionState.ACTIVE and not self.closing:
            self.ended = True
            self.closing = True
            reason = event["data"].get("end_reason") or await database_sync_to_async(
                lambda: SupportSession.objects.filter(pk=self.session.pk)
                .values_list("end_reason", flat=True).first()
            )()
            await self.stop_recording(reason or state)
            await self.send_json({"type": "ended", "state": state, "reason": reason or state})
            await self.close(code=protocol.CLOSE_ENDED)

    async def stop_recording(self, reason: str) -> None:
        """Only the customer's socket records (see CustomerConsumer)."""

    # --- The session's state, re-read from the database -------------------------------------
    # The channel layer's news is fast but reaches only the sockets it can: on the in-memory
    # layer, nothing a Celery worker (or another daphne) does. So every socket of a session
    # also re-reads the session's row on a timer, off the relay's hot path, and acts on what it
    # finds as it would on the channel layer's message.

    def watch_session(self) -> None:
        """Start the re-check, once the socket has joined its session."""
        self.session_watch = asyncio.ensure_future(self._recheck_session_periodically())

    def stop_watching_session(self) -> None:
        watch = getattr(self, "session_watch", None)
        if watch is not None:
            watch.cancel()

    async def _recheck_session_periodically(self) -> None:
        try:
            while not self.closing:
                await asyncio.sleep(settings.LIVE_STATE_RECHECK_SECONDS)
                if self.closing:
                    return
                try:
                    self.news_before_read = self.customer_news
                    now = await _session_now(self.session.pk)
                except Exception:  # the database away for a moment: try again next time
                    logger.exception("live socket (%s): re-reading the session failed",
                                     self.role)
                    continue
                await self.session_seen(now or {"state": SessionState.ENDED})
        except asyncio.CancelledError:
            pass
        except Exception as error:  # a task of its own: nothing may escape here either
            await self.unexpected(error, "session watch")

    async def session_seen(self, now: dict) -> None:
        """What the re-check read: an ended session ends this socket as ``session.state``
        would."""
        if now["state"] != SessionState.ACTIVE:
            await self.session_state({"type": "session.state", "data": {
                "session": self.session.reference, "state": now["state"],
                "end_reason": now.get("end_reason", ""),
            }})


class ViewerMixin:
    """Screen tiles to a viewer, with flow control: at most LIVE_VIEWER_WINDOW_BYTES
    unacknowledged; past that, tiles are dropped until a fresh keyframe arrives."""

    def start_flow(self) -> None:
        self.last_seq: int | None = None
        self.inflight: deque[tuple[int, int]] = deque()
        self.inflight_bytes = 0
        self.awaiting_keyframe = False
        self.last_keyframe_request = 0.0
        self.dropped = 0

    async def request_keyframe(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last_keyframe_request >= KEYFRAME_REQUEST_INTERVAL:
            self.last_keyframe_request = now
            await self.channel_layer.group_send(customer_group(self.session.pk),
                                                {"type": "live.keyframe"})

    async def screen_tile(self, event: dict) -> None:
        if self.closing:
            return
        data = event["data"]
        seq, keyframe = event["seq"], event["keyframe"]
        if not keyframe and not self.awaiting_keyframe and (
            (self.last_seq is not None and seq != self.last_seq + 1)  # lost on the way
            or time.time() - event["relayed_at"] > settings.LIVE_MAX_TILE_AGE_SECONDS
        ):
            # A gap or a stale tile: the picture would be wrong or late; wait for a keyframe.
            self.awaiting_keyframe = True
            await self.request_keyframe(force=True)
        self.last_seq = seq
        if self.awaiting_keyframe and not keyframe:
            self.dropped += 1  # stale: a keyframe will replace it
            await self.request_keyframe()
            return
        if self.inflight and self.inflight_bytes + len(data) > settings.LIVE_VIEWER_WINDOW_BYTES:
            self.dropped += 1
            first_drop = not self.awaiting_keyframe
            self.awaiting_keyframe = True
            await self.request_keyframe(force=first_drop)  # the first drop asks at once
            return
        if event["keyframe"]:
            self.awaiting_keyframe = False
        self.inflight.append((event["seq"], len(data)))
        self.inflight_bytes += len(data)
        await self.send(bytes_data=data)

    async def on_ack(self, message: dict) -> None:
        while self.inflight and self.inflight[0][0] <= message["seq"]:
            self.inflight_bytes -= self.inflight.popleft()[1]

    async def customer_arrived(self) -> None:
        """A new customer connection numbers its tiles afresh: start the window anew, wait for
        its keyframe, and tell the customer who is watching."""
        self.inflight.clear()
        self.inflight_bytes = 0
        self.last_seq = None
        self.awaiting_keyframe = True
        await self.announce(True)
        await self.request_keyframe(force=True)


class CustomerConsumer(LiveConsumer):
    """The admitted customer's browser: sends the screen, chats, answers control requests."""

    role = "customer"
    counts_session_bytes = True

    async def connect(self):
        await self.accept()  # no subprotocol, no compression: see docs/protocol.md
        self.last_seen = time.monotonic()
        self.watch = asyncio.ensure_future(self.watch_heartbeat(first_message=True))

    def actor(self) -> Actor:
        name = self.session.customer_entered_name if self.session else "customer"
        return Actor.customer(name or "customer")

    async def watch_heartbeat(self, *, first_message: bool) -> None:
        """Close a socket that says hello too late or stops sending heartbeats."""
        limit = settings.LIVE_HEARTBEAT_SECONDS * 3
        try:
            while not self.closing:
                await asyncio.sleep(settings.LIVE_HEARTBEAT_SECONDS / 2)
                if time.monotonic() - self.last_seen > limit:
                    await self.refuse(protocol.CLOSE_TIMEOUT, "no hello" if self.session is None
                                      else "heartbeat missing")
                    return
        except asyncio.CancelledError:
            pass
        except Exception as error:  # a task of its own: nothing may escape here either
            await self.unexpected(error, "heartbeat watch")

    async def receive(self, text_data=None, bytes_data=None):
        if self.session is None and not self.closing:
            # Before the hello only the hello itself: a token, never the seven-digit key.
            try:
                message = protocol.parse_control(text_data or "", role=self.role,
                                                 max_bytes=settings.LIVE_MAX_MESSAGE_BYTES) \
                    if bytes_data is None else {"type": "binary"}
            except protocol.ProtocolError as refused:
                await self.refuse(refused.code, refused.reason)
                return
            if message["type"] != "hello":
                await self.refuse(protocol.CLOSE_BAD_TOKEN, "hello with a token first")
                return
            await self.on_hello(message)
            return
        self.last_seen = time.monotonic()
        await super().receive(text_data=text_data, bytes_data=bytes_data)

    async def on_hello(self, message: dict) -> None:
        try:
            self.session = await database_sync_to_async(actions.connect_customer)(
                token=message["token"], channel=self.channel_name, ip=self.ip
            )
        except actions.LiveRefused as refused:
            await self.refuse(refused.code, refused.reason, session=refused.session)
            return
        self.last_seen = time.monotonic()
        if await session_bytes(self.session.pk) >= settings.LIVE_MAX_SESSION_BYTES:
            await self.refuse(protocol.CLOSE_BYTE_LIMIT, "session byte budget used up")
            return
        if not await self.start_recording():
            return
        await self.join(session_group(self.session.pk), customer_group(self.session.pk))
        self.watch_session()
        state = await _live_state(self.session)
        self.paused, self.control = state["paused"], state["control"]
        await self.send_json({
            "type": "welcome", "protocol": protocol.PROTOCOL_VERSION, "role": self.role,
            "session": self.session.reference, **state, **limits(),
            "chat": await _chat_history(self.session),
        })
        await self.broadcast({"type": "peer", "role": "customer", "present": True})

    # --- Recording: everything the session carries is written before it is forwarded ---------

    def at_us(self) -> int:
        return max(0, int((time.time() - self.recording_started) * 1_000_000))

    async def start_recording(self) -> bool:
        """Open this connection's recording; if that fails, no byte is relayed (fail closed)."""
        self.recorder = None
        self.recording_id = None
        self.recording_started = time.time()
        # One recording per customer connection; the random part keeps names apart even when
        # two connections start within the same millisecond (or under a test's frozen clock).
        relative = (f"{self.session.reference}/connection-"
                    f"{int(self.recording_started * 1000)}-{secrets.token_hex(4)}")
        try:
            recorder = recording.RecordingWriter(settings.RECORDINGS_DIR / relative,
                                                 self.session.reference)
            # The first record creates the first segment: an unwritable disk shows here.
            recorder.event({"type": "recording_started", "session": self.session.reference},
                           at_us=0)
        except recording.RecordingFailed as failed:
            await self.recording_failed(failed)
            return False
        self.recorder = recorder
        started = await database_sync_to_async(recording_actions.start_recording)(
            session=self.session, directory=relative
        )
        self.recording_id = started.pk
        return True

    async def record(self, write, *args, **kwargs) -> bool:
        """Write one record; on failure end the session at once and say False."""
        if self.recorder is None:
            return False
        try:
            write(*args, at_us=self.at_us(), **kwargs)
        except recording.RecordingFailed as failed:
            await self.recording_failed(failed)
            return False
        return True

    async def recording_failed(self, failed: Exception) -> None:
        """Fail closed: the relay stops, the session ends "recording failed", everyone is told."""
        self.recorder = None
        self.ended = True
        await database_sync_to_async(actions.end_for_failed_recording)(
            session=self.session, error=str(failed)
        )
        await self.close_recording("recording_failed")  # what was written is still archived
        if not self.closing:
            self.closing = True
            await self.send_json({"type": "ended", "state": "ended",
                                  "reason": "recording_failed"})
            await self.close(code=protocol.CLOSE_ENDED)

    async def stop_recording(self, reason: str) -> None:
        recorder, self.recorder = getattr(self, "recorder", None), None
        if recorder is not None:
            try:
                recorder.end(reason, at_us=self.at_us())
                recorder.close()
            except recording.RecordingFailed:
                pass  # the session is over either way; the reader finds the tail truncated
            except Exception:
                logger.exception("live socket: closing the recording failed")
        await self.close_recording(reason)

    async def close_recording(self, reason: str) -> None:
        """Hand the closed recording to the archive pipeline (once per connection)."""
        recording_id, self.recording_id = getattr(self, "recording_id", None), None
        if recording_id is not None:
            await database_sync_to_async(recording_actions.close_recording)(
                recording_id=recording_id, reason=reason
            )

    async def disconnect(self, code):
        # Each step runs even if one before it failed: a customer slot left taken would
        # refuse the customer's reconnect (4409) and the "connection lost" rule would not run.
        if getattr(self, "watch", None):
            self.watch.cancel()
        self.stop_watching_session()
        await self.guarded(self.stop_recording("disconnected" if not self.ended else "ended"))
        if self.session is not None:
            if self.unflushed_bytes:
                await self.guarded(self.flush_session_bytes())
            await self.guarded(database_sync_to_async(actions.disconnect_customer)(
                session=self.session, channel=self.channel_name, ip=self.ip
            ))
            if not self.ended:
                # With the grace period's deadline, if this started it (the action re-read
                # the session): the viewers count down to "connection lost".
                await self.guarded(self.broadcast(customer_lost_message(self.session)))
        await self.guarded(super().disconnect(code))

    async def receive_screen(self, data: bytes) -> None:
        if self.paused:
            raise protocol.ProtocolError(protocol.CLOSE_NOT_ALLOWED, "screen while paused")
        tile = protocol.parse_tile(data)
        if self.recorder is None:
            return  # the recording failed: nothing is relayed any more
        write = self.recorder.keyframe if tile.keyframe else self.recorder.tile
        if not await self.record(write, data):
            return  # record, then forward: nothing unrecorded leaves this socket
        await self.channel_layer.group_send(viewers_group(self.session.pk), {
            "type": "screen.tile", "data": data, "seq": tile.seq, "keyframe": tile.keyframe,
            "relayed_at": time.time(),
        })

    async def on_chat(self, message: dict) -> None:
        line = await database_sync_to_async(actions.post_chat)(
            session=self.session, sender=ChatMessage.Sender.CUSTOMER,
            label=self.session.customer_entered_name, text=message["text"],
        )
        await self.broadcast(chat_json(line), include_self=True)

    async def _control(self, step, name: str, **kwargs) -> None:
        await database_sync_to_async(step)(session=self.session, ip=self.ip, **kwargs)
        granted = await database_sync_to_async(control_granted)(self.session)
        self.control = granted
        await self.broadcast({"type": "control", "granted": granted, "by": "customer",
                              "step": name}, include_self=True)

    async def on_control_grant(self, message: dict) -> None:
        await self._control(consent_actions.answer_control, "granted", grant=True)

    async def on_control_deny(self, message: dict) -> None:
        await self._control(consent_actions.answer_control, "denied", grant=False)

    async def on_control_revoke(self, message: dict) -> None:
        await self._control(consent_actions.revoke_control, "revoked")

    async def _sharing(self, paused: bool) -> None:
        await database_sync_to_async(actions.set_sharing_paused)(
            session=self.session, paused=paused, ip=self.ip
        )
        self.paused = paused
        await self.broadcast({"type": "sharing", "paused": paused}, include_self=True)

    async def on_pause(self, message: dict) -> None:
        await self._sharing(True)

    async def on_resume(self, message: dict) -> None:
        await self._sharing(False)

    async def on_end(self, message: dict) -> None:
        await database_sync_to_async(consent_actions.end_by_customer)(
            session=self.session, ip=self.ip
        )
        self.ended = self.sent_end = True  # what follows is dropped; the close follows

    async def live_keyframe(self, event: dict) -> None:
        if not self.closing:
            await self.send_json({"type": "keyframe_request"})

    async def live_input(self, event: dict) -> None:
        if not self.closing and self.recorder is not None and await self.record(
            self.recorder.input, event["message"], record_keys=settings.RECORD_STAFF_KEYS
        ):
            await self.send_json(event["message"])

    async def before_forward(self, message: dict) -> bool:
        # Chat and the session's events reach the customer through here: on record first.
        if self.recorder is None:
            return False
        if message["type"] == "chat":
            channel = (recording.CHANNEL_CUSTOMER if message["from"] == "customer"
                       else recording.CHANNEL_STAFF)
            return await self.record(self.recorder.chat, message, channel=channel)
        if message["type"] in ("control", "control_request", "sharing", "peer", "peer_refused"):
            return await self.record(self.recorder.event, message)
        return True

    async def on_heartbeat(self, message: dict) -> None:
        if self.recorder is not None and not await self.record(self.recorder.tick):
            return
        await super().on_heartbeat(message)


class StaffConsumer(SignInWatch, ViewerMixin, LiveConsumer):
    """The assigned, OTP-verified staff member: watches, chats, asks for control, gives input.

    The socket lives only as long as the sign-in (portal.staff_sockets)."""

    role = "staff"
    permission = roles.RUN_SESSIONS

    async def connect(self):
        await self.accept()
        self.start_flow()
        self.user = await verified_staff_user(self.scope, permission=self.permission)
        if self.user is None:
            self.closing = True
            await self.close(code=protocol.CLOSE_NOT_VERIFIED)
            return
        self.session = await self.find_session(self.scope["url_route"]["kwargs"]["reference"])
        if self.session is None:
            await self.refuse(protocol.CLOSE_FORBIDDEN, "no such active session for this user")
            return
        await self.watch_sign_in(self.user)
        await self.join(session_group(self.session.pk), viewers_group(self.session.pk))
        state = await _live_state(self.session)
        self.paused, self.control = state["paused"], state["control"]
        self.customer_present = state["customer_present"]
        await database_sync_to_async(self.audit_join)()
        self.connected_at = time.monotonic()
        self.watch_session()
        await self.send_json({
            "type": "welcome", "protocol": protocol.PROTOCOL_VERSION, "role": self.role,
            "session": self.session.reference, **state, **limits(),
            "chat": await _chat_history(self.session),
        })
        await self.announce(True)
        await self.request_keyframe(force=True)

    def actor(self) -> Actor:
        user = getattr(self, "user", None)
        return Actor.staff(user) if user is not None else Actor.anonymous("live socket")

    @database_sync_to_async
    def find_session(self, reference: str) -> SupportSession | None:
        return SupportSession.objects.filter(
            reference=reference, assigned_to=self.user, state=SessionState.ACTIVE
        ).first()

    def audit_join(self) -> None:
        self.session.audit(EventType.LIVE_CONNECTED, by=self.actor(), ip=self.ip,
                           role=self.role)

    def audit_leave(self, code: int | None) -> None:
        # How long someone watched: from the join (audited) to the close.
        self.session.audit(EventType.LIVE_DISCONNECTED, by=self.actor(), ip=self.ip,
                           role=self.role, close_code=code,
                           connected_seconds=round(time.monotonic() - self.connected_at, 1))

    async def after_message(self, message: dict) -> None:
        if message["type"] == "peer" and message["role"] == "customer" and message["present"]:
            await self.customer_arrived()

    async def session_seen(self, now: dict) -> None:
        """Besides the end: the customer's connection lost or back, as the customer's socket
        would have told (it may be on another daphne process)."""
        await super().session_seen(now)
        present = bool(now.get("customer_channel"))
        if (self.closing or present == self.customer_present
                or self.customer_news != self.news_before_read):
            return  # nothing new, or the channel layer told newer news during the read
        message = {"type": "peer", "role": "customer", "present": present}
        if not present:
            message.update(grace_fields(grace_ends_at(
                state=now["state"], customer_channel=now["customer_channel"],
                customer_lost_at=now["customer_lost_at"],
            )))
        await self.live_message({"type": "live.message", "message": message, "exclude": ""})

    async def announce(self, present: bool) -> None:
        await self.broadcast({"type": "peer", "role": self.role, "present": present,
                              "name": self.user.get_full_name() or self.user.get_username()})

    async def disconnect(self, code):
        await self.guarded(self.stop_watching_sign_in())
        self.stop_watching_session()
        if getattr(self, "session", None) is not None and getattr(self, "user", None) is not None:
            if not self.ended:
                await self.guarded(self.announce(False))
            if getattr(self, "connected_at", None) is not None:
                await self.guarded(database_sync_to_async(self.audit_leave)(code))
        await super().disconnect(code)

    async def before_client_message(self, message: dict) -> bool:
        # What the staff member does here (not acks and heartbeats, which the page sends by
        # itself) counts as activity against the idle timeout.
        return await self.sign_in_holds(touch=message["type"] not in ("ack", "heartbeat"))

    async def sign_in_ended(self, reason: str) -> None:
        await self.refuse(CLOSE_NOT_VERIFIED, f"sign-in ended: {reason}")

    async def on_chat(self, message: dict) -> None:
        line = await database_sync_to_async(actions.post_chat)(
            session=self.session, sender=ChatMessage.Sender.STAFF,
            label=self.user.get_full_name() or self.user.get_username(), text=message["text"],
        )
        await self.broadcast(chat_json(line), include_self=True)

    async def on_control_request(self, message: dict) -> None:
        await database_sync_to_async(consent_actions.request_control)(
            session=self.session, by_user=self.user, ip=self.ip
        )
        await self.broadcast({"type": "control_request"}, include_self=True)

    async def on_control_release(self, message: dict) -> None:
        await database_sync_to_async(consent_actions.release_control)(
            session=self.session, by_user=self.user, ip=self.ip
        )
        self.control = False
        await self.broadcast({"type": "control", "granted": False, "by": "staff",
                              "step": "released"}, include_self=True)

    async def on_input(self, message: dict) -> None:
        if not self.control or self.paused:
            if time.monotonic() - self.input_stopped_at < INPUT_RACE_SECONDS:
                # Sent before this socket heard of the revocation or pause: dropped, not
                # punished.
                await self.send_json({"type": "error", "code": 0, "reason": "input dropped"})
                return
            raise protocol.ProtocolError(protocol.CLOSE_NOT_ALLOWED,
                                         "input without control" if not self.control
                                         else "input while paused")
        await self.channel_layer.group_send(customer_group(self.session.pk),
                                            {"type": "live.input", "message": message})

    async def on_end(self, message: dict) -> None:
        await database_sync_to_async(actions.end_by_staff)(
            session=self.session, by_user=self.user, ip=self.ip
        )
        self.ended = self.sent_end = True  # what follows is dropped; the close follows


class ObserverConsumer(StaffConsumer):
    """A compliance officer watching live (four-eyes), read-only; the customer is told."""

    role = "observer"
    permission = roles.REVIEW_EVIDENCE

    @database_sync_to_async
    def find_session(self, reference: str) -> SupportSession | None:
        return SupportSession.objects.filter(reference=reference,
                                             state=SessionState.ACTIVE).first()

