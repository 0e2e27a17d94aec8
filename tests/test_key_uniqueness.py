"""Keys: uniform draws, and unique among all keys that can still be redeemed."""

from collections import Counter
from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from sessions_app import actions, keys
from sessions_app.models import KeyState, SessionKey
from tests.sessions import schedule

LIVE_KEYS = 20_000


def test_draws_are_uniform_over_all_seven_digit_numbers():
    draws = [keys.new_key() for _ in range(50_000)]
    assert all(len(k) == 7 and k.isdigit() for k in draws)
    assert any(k.startswith("0") for k in draws)  # leading zeros are kept
    # Chi-square over the first digit: 9 degrees of freedom, p = 0.001 at 27.9.
    counts = Counter(k[0] for k in draws)
    expected = len(draws) / 10
    assert sum((counts[str(d)] - expected) ** 2 / expected for d in range(10)) < 27.9


@pytest.fixture
def many_live_keys(alice, office_open):
    """A session holding LIVE_KEYS live keys (rows made directly, as a busy day would)."""
    session = schedule(alice)
    now = timezone.now()
    drawn = {keys.new_key() for _ in range(LIVE_KEYS)}
    SessionKey.objects.bulk_create(
        SessionKey(session=session, key_hmac=keys.key_hmac(k), issued_by=alice, issued_at=now,
                   lifetime_minutes=15, expires_at=now + timedelta(minutes=15))
        for k in drawn
    )
    return sorted(drawn)


def test_a_live_key_cannot_be_stored_twice(alice, many_live_keys):
    taken = many_live_keys[0]
    session = SessionKey.objects.first().session
    with pytest.raises(IntegrityError), transaction.atomic():
        SessionKey.objects.create(
            session=session, key_hmac=keys.key_hmac(taken), issued_by=alice,
            lifetime_minutes=15, expires_at=timezone.now() + timedelta(minutes=15),
        )
    assert SessionKey.objects.filter(key_hmac=keys.key_hmac(taken)).count() == 1
    assert SessionKey.objects.count() == len(many_live_keys)


def test_a_used_number_may_be_drawn_again_once_it_is_dead(alice, many_live_keys):
    dead = many_live_keys[0]
    SessionKey.objects.filter(key_hmac=keys.key_hmac(dead)).update(state=KeyState.REDEEMED)
    session = SessionKey.objects.first().session
    again = SessionKey.objects.create(
        session=session, key_hmac=keys.key_hmac(dead), issued_by=alice,
        lifetime_minutes=15, expires_at=timezone.now() + timedelta(minutes=15),
    )
    stored = SessionKey.objects.filter(key_hmac=keys.key_hmac(dead))
    assert sorted(stored.values_list("state", flat=True)) == sorted(
        [KeyState.REDEEMED, KeyState.LIVE]
    )
    assert stored.get(state=KeyState.LIVE) == again
    # Still one live row per number: the new one is the only live key with that number.
    with pytest.raises(IntegrityError), transaction.atomic():
        SessionKey.objects.create(
            session=session, key_hmac=keys.key_hmac(dead), issued_by=alice,
            lifetime_minutes=15, expires_at=timezone.now() + timedelta(minutes=15),
        )


def test_issuing_draws_again_when_a_number_is_live(alice, many_live_keys, monkeypatch):
    # The first draws hit live keys; issuing must skip them, not fail or duplicate.
    draws = iter([*many_live_keys[:5], "0000000" if "0000000" not in many_live_keys else "9999999"])
    monkeypatch.setattr(keys, "new_key", lambda: next(draws))
    session = schedule(alice, starts_in=60)
    key, stored = actions.issue_key(session=session, by_user=alice)
    assert key not in many_live_keys
    assert SessionKey.objects.filter(key_hmac=stored.key_hmac, state=KeyState.LIVE).count() == 1
    assert SessionKey.objects.filter(state=KeyState.LIVE).count() == len(many_live_keys) + 1
