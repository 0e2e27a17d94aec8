"""Fuzzing the live sockets: thousands of random and targeted messages (deeply nested JSON,
lone surrogates, wrong types, huge numbers, binary and oversized frames) against the
customer's and the staff member's socket, while another session streams undisturbed.

Whatever arrives, a socket either stays open or closes with a documented code (never 1011, no
exception escapes the consumer), the customer's slot is given back and the recording closed,
and the other session's tiles keep arriving, in order (docs/protocol.md).
"""

import asyncio
import json
import re
import struct
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from recordings.models import Recording
from sessions_app import actions, protocol
from sessions_app.models import SessionState, SupportSession
from tests.personas import make_staff, sign_in_verified
from tests.test_live import (  # noqa: F401
    active_session,
    customer,
    next_of,
    socket,
    staff,
    terms,
    tile,
    welcomed,
)
from tests.test_staff_socket import sync

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("office_open", "thread_connections_closed", "terms"),
]

PROTOCOL_DOC = Path(__file__).resolve().parent.parent / "docs/protocol.md"
DOCUMENTED_CLOSE_CODES = {
    int(code) for code in re.findall(r"^\| (\d{4}) \| `CLOSE_\w+` \|", PROTOCOL_DOC.read_text(),
                                     re.M)
}
MAX_MESSAGE = 64 * 1024  # the smallest allowed: oversized frames stay cheap to build
FUZZ = hypothesis_settings(
    max_examples=300, deadline=None, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large],
)

# --- What to send ------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)
nasty_strings = st.sampled_from([
    "\ud800", "a\udfffb", "\x00", "x" * 3000, "", " ", "\u202e", "\U0001f600", "null",
])
nasty_numbers = st.sampled_from(["1e999", "-1e999", "NaN", "Infinity", "-0", "9" * 5000,
                                 "4294967296", "-1", "1.5", "0.0", "true", "null"])


def raw_json(kind: str, fields: dict[str, str]) -> str:
    """An object written by hand, so that numbers and escapes go out exactly as drawn."""
    parts = [f'"type": {json.dumps(kind)}'] + [f"{json.dumps(k)}: {v}" for k, v in fields.items()]
    return "{" + ", ".join(parts) + "}"


@st.composite
def targeted(draw, role: str) -> str:
    """A message of one of the role's types, its fields valid, wrong, nasty or extra."""
    kinds = sorted(protocol.CLIENT_MESSAGES[role]) + ["hello", "input", "ack", "bogus"]
    kind = draw(st.sampled_from(kinds))
    names = list(protocol.CLIENT_MESSAGES[role].get(kind, {})) + ["token", "text", "seq"]
    fields = {}
    for name in draw(st.lists(st.sampled_from(names), max_size=4, unique=True)):
        fields[name] = draw(st.one_of(
            nasty_numbers,
            nasty_strings.map(lambda s: json.dumps(s, ensure_ascii=True)),
            json_values.map(json.dumps),
            st.sampled_from(['"pointermove"', '"keydown"', "0.5", "0", "1"]),
        ))
    return raw_json(kind, fields)


def nested(depth: int) -> str:
    return '{"type": "chat", "text": ' + "[" * depth + "]" * depth + "}"


@st.composite
def binary_frame(draw) -> bytes:
    header = protocol.HEADER.pack(
        draw(st.sampled_from([1, 1, 1, 0, 2, 255])), draw(st.sampled_from([1, 1, 0, 9])),
        draw(st.integers(0, 2**32 - 1)), draw(st.integers(0, 2**64 - 1)),
        draw(st.integers(0, 2**16 - 1)), draw(st.integers(0, 2**16 - 1)),
        draw(st.integers(0, 2**16 - 1)), draw(st.integers(0, 2**16 - 1)),
        draw(st.integers(0, 2**16 - 1)), draw(st.integers(0, 2**16 - 1)),
        draw(st.integers(0, 3)), draw(st.integers(0, 255)),
    )
    return header + draw(st.binary(max_size=64))


def frames(role: str):
    return st.one_of(
        targeted(role),
        st.text(max_size=200),
        json_values.map(json.dumps),
        st.integers(2, 200_000).map(nested),
        st.integers(2, 100_000).map(lambda depth: "[" * depth),
        st.binary(max_size=200),
        binary_frame(),
        st.integers(MAX_MESSAGE + 1, 2 * MAX_MESSAGE).map(lambda size: b"\x01" * size),
        st.integers(MAX_MESSAGE + 1, 2 * MAX_MESSAGE).map(lambda size: " " * size),
        st.just('{"type": "chat", "text": "Guten Tag"}'),
        st.just('{"type": "heartbeat"}'),
    )


# --- The other session, streaming all along -------------------------------------------------------


class Stream:
    """Erik's session: the customer sends a keyframe every 20 ms, Erik acknowledges each."""

    def __init__(self, cust, viewer):
        self.cust, self.viewer, self.seqs = cust, viewer, []
        self.tasks = [asyncio.ensure_future(self.send()), asyncio.ensure_future(self.read())]

    async def send(self):
        seq = 0
        while True:
            seq += 1
            await self.cust.send_to(bytes_data=tile(seq, keyframe=True, payload=b"s" * 500))
            await asyncio.sleep(0.02)

    async def read(self):
        while True:
            frame = await self.viewer.receive_from(timeout=300)
            if isinstance(frame, bytes):
                seq = protocol.HEADER.unpack_from(frame)[2]
                self.seqs.append(seq)
                await self.viewer.send_json_to({"type": "ack", "seq": seq})

    def check(self):
        for task in self.tasks:
            if task.done():
                task.result()  # raises what stopped it
        assert self.seqs == list(range(self.seqs[0], self.seqs[0] + len(self.seqs))) \
            if self.seqs else True, "the other session's tiles came out of order"

    async def stop(self):
        for task in self.tasks:
            task.cancel()
        await self.cust.disconnect()
        await self.viewer.disconnect()


@pytest.fixture
async def stream(db, settings):
    settings.LIVE_MAX_MESSAGE_BYTES = MAX_MESSAGE
    erik = await sync(make_staff, "erik", "Support staff")
    session, token = await sync(lambda: active_session(erik))
    cust = await customer(token)
    viewer = await staff(erik, session)
    await welcomed(viewer)
    stream = Stream(cust, viewer)
    await asyncio.sleep(0.2)
    yield stream
    received = len(stream.seqs)
    stream.check()
    await stream.stop()
    assert received > 50, "the other session stopped streaming"


class Target:
    """Alice's session, the one the fuzzed messages go to; a new one if the fuzz ended it."""

    def __init__(self, alice):
        self.alice, self.client = alice, Client()
        self.session = active_session(alice)[0]
        sign_in_verified(self.client, alice)

    def fresh(self) -> SupportSession:
        self.session.refresh_from_db()
        if self.session.state != SessionState.ACTIVE:
            self.session = active_session(self.alice)[0]
        return self.session


@pytest.fixture
async def target(alice, stream):
    return await sync(Target, alice)


async def fuzz(communicator, sent: list) -> None:
    """Send the frames and a heartbeat; the socket stays open or closes with a documented code."""
    for frame in sent:  # as daphne passes them on, empty frames included
        key = "bytes" if isinstance(frame, bytes) else "text"
        await communicator.send_input({"type": "websocket.receive", key: frame})
    await communicator.send_to(text_data='{"type": "heartbeat"}')
    for _ in range(200):
        output = await communicator.receive_output(timeout=10)  # raises what the app raised
        if output["type"] == "websocket.close":
            assert output["code"] in DOCUMENTED_CLOSE_CODES, output
            break
        if json.loads(output.get("text") or "{}").get("type") == "heartbeat":
            break
    await communicator.disconnect()


def released(session: SupportSession) -> bool:
    """The customer's slot is free and none of the session's recordings is left open."""
    session.refresh_from_db()
    return session.customer_channel == "" and not Recording.objects.filter(
        session=session, closed_at__isnull=True
    ).exists()


@FUZZ
@given(sent=st.lists(frames("customer"), min_size=1, max_size=6))
async def test_no_customer_message_gets_a_session_stuck(target, stream, sent):
    session = await sync(target.fresh)
    token = await sync(lambda: actions.issue_live_token(session=session))
    communicator = await customer(token)  # 4409 here would mean the last one got stuck
    await fuzz(communicator, sent)
    assert await sync(released, session)
    stream.check()


@FUZZ
@given(sent=st.lists(frames("staff"), min_size=1, max_size=6))
async def test_no_staff_message_escapes_the_staff_socket(target, stream, sent):
    session = await sync(target.fresh)
    communicator = socket(f"/ws/live/staff/{session.reference}/", target.client)
    assert (await communicator.connect())[0]
    await welcomed(communicator)
    await fuzz(communicator, sent)
    stream.check()


@hypothesis_settings(max_examples=1500, deadline=None, database=None)
@given(role=st.sampled_from(sorted(protocol.CLIENT_MESSAGES)), data=st.data())
def test_the_parser_lets_only_protocol_errors_out(role, data):
    """Whatever the text, parse_control refuses it or returns a flat message that can be
    stored, recorded (UTF-8) and forwarded (strict JSON)."""
    text = data.draw(st.one_of(frames(role).filter(lambda f: isinstance(f, str)),
                               targeted(role)))
    try:
        message = protocol.parse_control(text, role=role,
                                          max_bytes=django_settings.LIVE_MAX_MESSAGE_BYTES)
    except protocol.ProtocolError as refused:
        assert refused.code in DOCUMENTED_CLOSE_CODES
        return
    json.dumps(message, allow_nan=False, ensure_ascii=False).encode("utf-8")
    assert all(isinstance(v, str | int | float) and not isinstance(v, bool)
               for v in message.values())
    assert "\x00" not in json.dumps(message, ensure_ascii=False)
    struct.pack("!I", message.get("seq", 0))  # a tile's seq fits its header field
