"""Single use under pressure: of many concurrent redemptions of one key, exactly one wins."""

import threading

import pytest
from django.db import connection

from audit.event_types import EventType
from sessions_app import actions
from sessions_app.models import KeyState, SessionKey, SessionState
from tests.personas import events
from tests.sessions import schedule

CUSTOMERS = 8


@pytest.mark.django_db(transaction=True)
def test_exactly_one_of_many_concurrent_redemptions_wins(alice, office_open):
    session = schedule(alice)
    key, _ = actions.issue_key(session=session, by_user=alice)
    start = threading.Barrier(CUSTOMERS)
    outcomes: list[str] = []

    def customer(n: int) -> None:
        try:
            start.wait()
            actions.redeem_key(typed_key=key, customer_name=f"Kunde {n}", ip=f"203.0.113.{n}")
            outcomes.append("won")
        except actions.KeyRejected:
            outcomes.append("rejected")
        except Exception as error:  # pragma: no cover - shown in the assertion
            outcomes.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=customer, args=(n,)) for n in range(CUSTOMERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["rejected"] * (CUSTOMERS - 1) + ["won"], outcomes
    session.refresh_from_db()
    assert session.state == SessionState.CUSTOMER_WAITING
    assert SessionKey.objects.get().state == KeyState.REDEEMED
    assert len(events(EventType.KEY_REDEEMED)) == 1
    assert len(events(EventType.KEY_REDEMPTION_FAILED)) == CUSTOMERS - 1
