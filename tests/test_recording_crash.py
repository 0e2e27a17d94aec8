"""A relay process that dies mid-session leaves its recording behind; the recovery task finds
it and the archive pipeline keeps every complete record."""

import asyncio
import json
import os
import signal
import time

import pytest
import websockets

from recordings import archive, tasks
from recordings.models import Recording, RecordingState
from sessions_app import protocol
from tests.processes import child_env, free_port, http_status, start, stop, wait_until
from tests.test_live_two_servers import active_session, next_of
from tests.test_recording_archive import stored_files

pytestmark = pytest.mark.usefixtures("office_open")


def screen(seq: int, *, keyframe: bool = False) -> bytes:
    from tests.recordings import BLUE, RED
    from tests.recordings import screen as make

    return make(seq, RED if keyframe else BLUE, keyframe=keyframe, at=(64, 64))


async def share_until_killed(address: str, token: str, process) -> int:
    customer = await websockets.connect(f"ws://{address}/ws/live/customer/",
                                        origin=f"http://{address}")
    await customer.send(json.dumps({"type": "hello", "token": token}))
    await next_of(customer, "welcome")
    await customer.send(screen(1, keyframe=True))
    for seq in range(2, 12):
        await customer.send(screen(seq))
    await customer.send(json.dumps({"type": "chat", "text": "Gleich stürzt der Server ab."}))
    await asyncio.sleep(1.0)  # let daphne write what it received
    os.killpg(process.pid, signal.SIGKILL)  # no end record, no close, no database update
    process.wait()
    try:
        await customer.close()
    except OSError:
        pass
    return 11


def test_a_recording_left_by_a_killed_relay_is_recovered_and_archived(
    alice, settings, tmp_path, transactional_db
):
    session, token = active_session(alice)
    port = free_port()
    log = tmp_path / "daphne.log"
    env = child_env(PORTAL_RECORDINGS_DIR=str(settings.RECORDINGS_DIR))
    process = start(["-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                     "portal.asgi:application"], env, log)
    try:
        wait_until(lambda: http_status(f"http://127.0.0.1:{port}/healthz") == 200, timeout=60,
                   what="daphne", log=log)
        sent = asyncio.run(share_until_killed(f"127.0.0.1:{port}", token, process))
    finally:
        stop(process)
    recording = Recording.objects.get(session=session)
    assert recording.state == RecordingState.RECORDING  # nobody closed it

    def written(seconds_ago: float) -> None:  # on the test's clock, which stands at 10:00
        moment = time.time() - seconds_ago
        for path in [recording.working_path, *recording.working_path.iterdir()]:
            os.utime(path, (moment, moment))

    written(5)
    assert tasks.recover_recordings()["abandoned"] == 0  # not stale yet
    written(settings.RECORDING_STALE_SECONDS + 1)
    assert tasks.recover_recordings()["abandoned"] == 1
    assert archive.run(recording.pk) == "archived"
    recording.refresh_from_db()
    assert not recording.ended_cleanly  # the crash is visible in the evidence
    assert recording.counts["keyframe"] + recording.counts["tile"] == sent
    assert recording.counts["chat"] == 1
    assert archive.verify_stored(recording).intact
    assert any(p.name == "manifest.json" for p in stored_files(settings))
    assert protocol.PROTOCOL_VERSION  # the tiles were the live protocol's
