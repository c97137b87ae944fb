"""The state of an API key, judged against the clock it is given."""

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from stages.access import Allow, KeyFacts, check_key
from stages.keys import KeyState, key_state

EXPIRY = datetime(2026, 6, 1, tzinfo=UTC)


def test_a_key_is_active_until_the_instant_it_expires() -> None:
    before = EXPIRY - timedelta(microseconds=1)
    assert key_state(revoked=False, expires_at=EXPIRY, now=before) is KeyState.ACTIVE
    assert key_state(revoked=False, expires_at=EXPIRY, now=EXPIRY) is KeyState.EXPIRED


def test_revocation_wins_over_expiry() -> None:
    after = EXPIRY + timedelta(days=1)
    assert key_state(revoked=True, expires_at=EXPIRY, now=after) is KeyState.REVOKED
    assert key_state(revoked=True, expires_at=EXPIRY, now=EXPIRY - timedelta(days=1)) == "revoked"


@given(
    revoked=st.booleans(),
    offset=st.integers(min_value=-(10**6), max_value=10**6),
)
def test_only_an_active_key_passes_the_access_decision(revoked: bool, offset: int) -> None:
    now = EXPIRY + timedelta(seconds=offset)
    state = key_state(revoked=revoked, expires_at=EXPIRY, now=now)
    key = KeyFacts(scopes=frozenset({"keys"}), expires_at=EXPIRY, revoked=revoked)
    allowed = isinstance(check_key(key, now, "keys"), Allow)
    assert allowed == (state is KeyState.ACTIVE)
