"""Evidence as values: every kind has one payload type and follows the naming style, every
name older versions wrote reads as a kind, every call site writes a known kind, and an
actor's stored text reads back as the same value."""

from __future__ import annotations

import ast
import copy
import dataclasses
import pickle
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stages import evidence as ev
from stages.applications import ApplicationMove
from stages.enforcement import AccountMove, AppealMove, EnforcementStep
from stages.grants import GrantMove
from stages.incidents import IncidentMove
from stages.release import Move

ROOT = Path(__file__).resolve().parents[2]
# A past participle (regular, or one of the irregular ones the names use), optionally
# followed by its particle: `signed_in`, `rolled_back`, `set_up`.
IRREGULAR = frozenset({"reset", "set", "withdrawn", "upheld"})
PARTICLES = frozenset({"in", "up", "back"})
NAME = re.compile(r"^[a-z]+(_[a-z]+)*\.[a-z]+(_[a-z]+)*$")


def is_past_participle(word: str) -> bool:
    return word.endswith("ed") or word in IRREGULAR


def follows_style(name: str) -> bool:
    if not NAME.match(name):
        return False
    words = name.split(".")[1].split("_")
    if words[-1] in PARTICLES and len(words) > 1:
        words = words[:-1]
    return is_past_participle(words[-1])


@pytest.mark.parametrize(
    ("name", "good"),
    [
        ("grant.expired", True),
        ("account.signed_in", True),
        ("stage.rolled_back", True),
        ("account.operator_set_up", True),
        ("application.withdrawn", True),
        ("grant.expire", False),
        ("stage.approval", False),
        ("account.operator_setup", False),
        ("Grant.Expired", False),
        ("grant..expired", False),
        ("grantexpired", False),
        ("account.sign_in", False),
    ],
)
def test_the_style_check_itself_tells_good_names_from_bad(name: str, good: bool) -> None:
    assert follows_style(name) is good


@pytest.mark.parametrize("kind", list(ev.EvidenceKind))
def test_every_kind_is_named_noun_dot_past_participle(kind: ev.EvidenceKind) -> None:
    assert follows_style(kind.value), kind.value


@pytest.mark.parametrize("kind", list(ev.EvidenceKind))
def test_every_kind_has_exactly_one_frozen_payload_type(kind: ev.EvidenceKind) -> None:
    payload = ev.payload_type(kind)
    assert payload.KIND is kind
    assert dataclasses.is_dataclass(payload)
    assert payload.__dataclass_params__.frozen  # type: ignore[attr-defined]
    assert [k for k, t in ev.PAYLOADS.items() if t is payload] == [kind]


def test_no_payload_type_is_left_without_a_kind() -> None:
    assert set(ev.PAYLOADS) == set(ev.EvidenceKind)


def test_a_second_payload_type_for_a_kind_is_refused() -> None:
    with pytest.raises(TypeError, match="already has a payload type"):

        @dataclasses.dataclass(frozen=True)
        class Again(ev.Payload):
            KIND = ev.EvidenceKind.GRANT_ISSUED

    assert ev.PAYLOADS[ev.EvidenceKind.GRANT_ISSUED] is ev.GrantIssued


def test_a_payload_is_frozen_and_stores_plain_json_data() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    issued = ev.GrantIssued(grant="g1", tier="public", expires_at=at, application=None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        issued.grant = "other"  # type: ignore[misc]
    assert issued.data() == {
        "grant": "g1",
        "tier": "public",
        "expires_at": "2026-01-02T03:04:05+00:00",
        "application": None,
    }
    promoted = ev.StagePromoted(
        from_="internal",
        to="partner",
        approvals=("op:a",),
        gates=(ev.GateResult(gate="soak", met=True, actual=3, required=2),),
    )
    assert promoted.data() == {
        "from": "internal",
        "to": "partner",
        "approvals": ["op:a"],
        "gates": [{"gate": "soak", "met": True, "actual": 3, "required": 2}],
        "override": False,
        "override_reason": None,
        "unmet": [],
    }


def test_every_legacy_name_maps_to_a_kind_of_the_same_noun_or_its_successor() -> None:
    for old, new in ev.LEGACY_KINDS.items():
        assert old not in ev.EvidenceKind._value2member_map_, old
        assert not follows_style(old), f"{old} needs no mapping"
        assert ev.kind_of_stored(old) is new
        assert old in ev.stored_names(new)
        assert new.value in ev.stored_names(new)


def test_a_name_no_version_wrote_has_no_kind() -> None:
    assert ev.kind_of_stored("grant.exploded") is None
    assert ev.kind_of_stored("") is None
    assert ev.stored_names(ev.EvidenceKind.KEY_CREATED) == {"key.created"}


# Every name an older version wrote from a move enum, `f"<noun>.{move.value}"`.
OLD_MOVE_NAMES = [
    *(f"application.{m.value}" for m in ApplicationMove),
    *(f"grant.{m.value}" for m in GrantMove),
    *(f"stage.{m.value}" for m in Move),
    *(f"incident.{m.value}" for m in IncidentMove),
    *(f"account.{m.value}" for m in EnforcementStep),
    *(f"account.{m.value}" for m in AccountMove if m.value not in {"warn", "suspend", "terminate"}),
    *(f"appeal.{m.value}" for m in AppealMove),
]
# The literal names older versions wrote that are not in the new style.
OLD_LITERAL_NAMES = [
    "account.operator_setup",
    "grant.expire",
    "stage.approval",
    "stage.promote",
    "release.recall",
    "release.reinstate",
    "release.reinstate_approval",
    "incident.note",
]


@pytest.mark.parametrize("old", OLD_MOVE_NAMES + OLD_LITERAL_NAMES)
def test_every_name_older_versions_wrote_still_reads_as_a_kind(old: str) -> None:
    assert ev.kind_of_stored(old) is not None, old


def test_the_move_tables_cover_every_move() -> None:
    assert set(ev.APPLICATION_MOVES) == set(ApplicationMove)
    assert set(ev.INCIDENT_MOVES) == set(IncidentMove)
    assert set(ev.ENFORCEMENT_STEPS) == set(EnforcementStep)
    assert set(ev.UNDOING_MOVES) == {AccountMove.LIFT, AccountMove.RESTORE}
    assert set(ev.APPEAL_DECISIONS) == set(AppealMove)
    for move in GrantMove:
        if move is GrantMove.RENEW:
            # A renewal is the approval of a renewal application: it records GrantRenewed,
            # with the application and the new end, not an operator's move.
            assert ev.kind_of_stored("grant.renew") is ev.EvidenceKind.GRANT_RENEWED
            continue
        moved = ev.grant_moved(move, grant="g", from_="active", to="x", reason="r")
        assert moved.KIND is ev.kind_of_stored(f"grant.{move.value}")
    for stage_move in Move:
        payload = ev.stage_moved(stage_move, from_="a", to="b", reason=None)
        assert payload.KIND is ev.kind_of_stored(f"stage.{stage_move.value}")
    for app_move, app_payload in ev.APPLICATION_MOVES.items():
        assert app_payload.KIND is ev.kind_of_stored(f"application.{app_move.value}")
    for incident_move, incident_payload in ev.INCIDENT_MOVES.items():
        assert incident_payload.KIND is ev.kind_of_stored(f"incident.{incident_move.value}")


def kinds_written_as_text(source: str) -> list[object]:
    """Kind strings a module still writes literally, from callers not yet given payloads:
    `evidence.record(session, "<kind>", ...)`, and rows queued for it (dicts with both a
    "kind" and an "actor")."""
    found: list[object] = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "record"
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
        ):
            found.append(node.args[1].value)
        if isinstance(node, ast.Dict):
            entries = {
                key.value: value
                for key, value in zip(node.keys, node.values, strict=True)
                if isinstance(key, ast.Constant)
            }
            kind = entries.get("kind")
            if "actor" in entries and isinstance(kind, ast.Constant):
                found.append(kind.value)
    return found


def test_the_scan_sees_both_ways_of_writing_a_kind_as_text() -> None:
    source = """
evidence.record(session, "key.created", actor=a, at=t)
pending.append({"kind": "url.issued", "actor": a, "at": t})
notify(session, {"kind": "account.verify_email"})
evidence.record(session, ev.KeyRevoked(key="k"), actor=a, at=t)
"""
    assert kinds_written_as_text(source) == ["key.created", "url.issued"]


def test_every_kind_the_gateway_still_writes_as_text_is_a_known_kind() -> None:
    written = [
        (path, name)
        for path in sorted((ROOT / "gateway").rglob("*.py"))
        for name in kinds_written_as_text(path.read_text())
    ]
    for path, name in written:
        assert name in ev.EvidenceKind._value2member_map_, f"{path}: {name}"


# Actors.

ACTORS = [
    ev.Actor.account("3f1c"),
    ev.Actor(ev.ActorKind.OPERATOR_CLI, "ann@host"),
    ev.SCHEDULER,
    ev.TRIGGER,
    ev.SECRET_SCANNING,
    ev.GATEWAY,
    ev.PUBLIC,
    ev.ANONYMOUS,
    ev.Actor(ev.ActorKind.OTHER, "demo-seed"),
]


@pytest.mark.parametrize("actor", ACTORS, ids=str)
def test_an_actor_reads_back_from_its_stored_text(actor: ev.Actor) -> None:
    text = str(actor)
    back = ev.Actor.parse(text)
    assert back == actor
    assert (back.kind, back.id) == (actor.kind, actor.id)
    assert type(str(actor)) is str
    assert copy.copy(actor) == actor
    unpickled = pickle.loads(pickle.dumps(actor))  # noqa: S301 - our own bytes
    assert unpickled == actor
    assert unpickled.kind is actor.kind


def test_actors_keep_todays_stored_forms() -> None:
    assert str(ev.Actor.account("abc")) == "account:abc"
    assert str(ev.Actor(ev.ActorKind.OPERATOR_CLI, "u@h")) == "cli:u@h"
    assert str(ev.SCHEDULER) == "system:scheduler"
    assert str(ev.TRIGGER) == "system:trigger"
    assert str(ev.SECRET_SCANNING) == "system:secret-scanning"
    assert str(ev.GATEWAY) == "system"
    assert str(ev.PUBLIC) == "public"
    assert str(ev.ANONYMOUS) == "anonymous"


@pytest.mark.parametrize(
    ("text", "kind", "id_"),
    [
        ("account:abc", ev.ActorKind.ACCOUNT, "abc"),
        ("cli:ann@host", ev.ActorKind.OPERATOR_CLI, "ann@host"),
        ("system", ev.ActorKind.SYSTEM, ""),
        ("system:scheduler", ev.ActorKind.SYSTEM, "scheduler"),
        ("public", ev.ActorKind.PUBLIC, ""),
        ("anonymous", ev.ActorKind.ANONYMOUS, ""),
        # Text in no known form is kept as it is, never refused: history must read.
        ("op:ann", ev.ActorKind.OTHER, "op:ann"),
        ("account:", ev.ActorKind.OTHER, "account:"),
        ("account:a:b", ev.ActorKind.OTHER, "account:a:b"),
        ("system:", ev.ActorKind.OTHER, "system:"),
        ("cli:", ev.ActorKind.OTHER, "cli:"),
        ("systemd", ev.ActorKind.OTHER, "systemd"),
        ("t", ev.ActorKind.OTHER, "t"),
    ],
)
def test_parse_reads_every_stored_form(text: str, kind: ev.ActorKind, id_: str) -> None:
    actor = ev.Actor.parse(text)
    assert (actor.kind, actor.id, str(actor)) == (kind, id_, text)


@pytest.mark.parametrize(
    ("kind", "id_"),
    [
        (ev.ActorKind.ACCOUNT, ""),
        (ev.ActorKind.ACCOUNT, "a:b"),
        (ev.ActorKind.OPERATOR_CLI, ""),
        (ev.ActorKind.PUBLIC, "someone"),
        (ev.ActorKind.ANONYMOUS, "someone"),
        (ev.ActorKind.OTHER, ""),
        (ev.ActorKind.OTHER, "account:abc"),  # that is an account, not free text
        (ev.ActorKind.OTHER, "system"),
        (ev.ActorKind.ACCOUNT, "x" * 400),
        (ev.ActorKind.OPERATOR_CLI, "ann\n@host"),
    ],
)
def test_an_actor_that_would_not_read_back_is_refused(kind: ev.ActorKind, id_: str) -> None:
    with pytest.raises(ValueError, match="actor"):
        ev.Actor(kind, id_)


def test_parse_of_an_actor_is_the_same_value() -> None:
    actor = ev.Actor.account("abc")
    assert ev.Actor.parse(actor) is actor


def test_who_an_actor_is_to_an_account() -> None:
    assert ev.Actor.account("me").as_seen_by("me") == "you"
    assert ev.Actor.account("other").as_seen_by("me") == "operator"
    assert ev.SCHEDULER.as_seen_by("me") == "system"
    assert ev.GATEWAY.as_seen_by("me") == "system"
    assert ev.Actor.parse("systemd").as_seen_by("me") == "operator"
    assert ev.Actor.parse("cli:me").as_seen_by("me") == "operator"
    assert ev.Actor.account("me").is_account("me")
    assert not ev.Actor.parse("account:me:x").is_account("me")


@given(st.text(min_size=1, max_size=320).filter(str.isprintable))
def test_any_printable_stored_text_reads_back_unchanged(text: str) -> None:
    actor = ev.Actor.parse(text)
    assert str(actor) == text
    assert ev.Actor(actor.kind, actor.id) == actor
