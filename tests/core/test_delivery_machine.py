"""The outboxes' status machine (stages/delivery.py): every legal move, every illegal one,
and random walks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stages.delivery import (
    FINAL_EMAIL_STATUSES,
    FINAL_WEBHOOK_STATUSES,
    DeliveryMove,
    EmailStatus,
    IllegalDeliveryMove,
    WebhookStatus,
    apply_email_move,
    apply_webhook_move,
    bulk_delivery_move,
)

E, W, M = EmailStatus, WebhookStatus, DeliveryMove

EMAIL_LEGAL = {
    (E.PENDING, M.CLAIM): E.SENDING,
    (E.SENDING, M.CLAIM): E.SENDING,
    (E.SENDING, M.DELIVER): E.SENT,
    (E.SENDING, M.RETRY): E.PENDING,
    (E.SENDING, M.FAIL): E.FAILED,
    (E.PENDING, M.SKIP): E.SKIPPED,
    (E.SENDING, M.SKIP): E.SKIPPED,
    (E.DIGEST, M.GATHER): E.DIGESTED,
}
WEBHOOK_LEGAL = {
    (W.PENDING, M.CLAIM): W.SENDING,
    (W.SENDING, M.CLAIM): W.SENDING,
    (W.SENDING, M.DELIVER): W.DELIVERED,
    (W.SENDING, M.RETRY): W.PENDING,
    (W.SENDING, M.FAIL): W.FAILED,
}


@pytest.mark.parametrize("status", list(EmailStatus))
@pytest.mark.parametrize("move", list(DeliveryMove))
def test_every_mail_move_is_in_the_table_or_refused(
    status: EmailStatus, move: DeliveryMove
) -> None:
    if (status, move) in EMAIL_LEGAL:
        assert apply_email_move(status, move) is EMAIL_LEGAL[(status, move)]
        return
    with pytest.raises(IllegalDeliveryMove) as refused:
        apply_email_move(status, move)
    assert (refused.value.status, refused.value.move) == (status, move)
    assert f"cannot {move.value} a message that is {status.value}" == str(refused.value)


@pytest.mark.parametrize("status", list(WebhookStatus))
@pytest.mark.parametrize("move", list(DeliveryMove))
def test_every_webhook_move_is_in_the_table_or_refused(
    status: WebhookStatus, move: DeliveryMove
) -> None:
    if (status, move) in WEBHOOK_LEGAL:
        assert apply_webhook_move(status, move) is WEBHOOK_LEGAL[(status, move)]
        return
    with pytest.raises(IllegalDeliveryMove):
        apply_webhook_move(status, move)


def test_a_webhook_is_never_skipped() -> None:
    with pytest.raises(IllegalDeliveryMove):
        bulk_delivery_move(WebhookStatus, DeliveryMove.SKIP)


def test_finished_messages_are_final() -> None:
    assert {E.SENT, E.FAILED, E.SKIPPED, E.DIGESTED} == FINAL_EMAIL_STATUSES
    assert {W.DELIVERED, W.FAILED} == FINAL_WEBHOOK_STATUSES
    for status in FINAL_EMAIL_STATUSES:
        for move in DeliveryMove:
            with pytest.raises(IllegalDeliveryMove):
                apply_email_move(status, move)


def test_the_guarded_updates_start_where_the_table_says() -> None:
    assert bulk_delivery_move(EmailStatus, M.CLAIM) == ((E.PENDING, E.SENDING), E.SENDING)
    assert bulk_delivery_move(EmailStatus, M.SKIP) == ((E.PENDING, E.SENDING), E.SKIPPED)
    assert bulk_delivery_move(EmailStatus, M.DELIVER) == ((E.SENDING,), E.SENT)
    assert bulk_delivery_move(WebhookStatus, M.DELIVER) == ((W.SENDING,), W.DELIVERED)
    assert bulk_delivery_move(WebhookStatus, M.RETRY) == ((W.SENDING,), W.PENDING)
    for table, states in ((EMAIL_LEGAL, EmailStatus), (WEBHOOK_LEGAL, WebhookStatus)):
        for move in {m for _, m in table}:
            sources, to = bulk_delivery_move(states, move)
            assert {s for s, m in table if m is move} == set(sources)
            assert all(table[(s, move)] is to for s in sources)


@given(st.lists(st.sampled_from(list(DeliveryMove)), max_size=30))
def test_a_random_walk_only_takes_legal_moves_and_stops_at_a_final_status(
    moves: list[DeliveryMove],
) -> None:
    status = E.PENDING
    for move in moves:
        before = status
        try:
            status = apply_email_move(status, move)
        except IllegalDeliveryMove:
            assert status is before  # a refused move changes nothing
            assert before in FINAL_EMAIL_STATUSES or (before, move) not in EMAIL_LEGAL
            continue
        # Only a claimed message is sent, retried or given up; nothing leaves a final one.
        if status in (E.SENT, E.FAILED) or (status is E.PENDING and move is M.RETRY):
            assert before is E.SENDING
        assert before not in FINAL_EMAIL_STATUSES
