"""What a minor's account may do: the pure rules behind the minors module."""

from __future__ import annotations

from synapse_modules.minors_rules import (
    MinorStatus,
    create_room_refusal,
    hidden_from,
    is_blocked,
    join_rules_refusal,
    membership_refusal,
    validate_consent,
)

HERE = "school.test"


def test_blocked_until_consent_unless_admin_or_consent_not_required() -> None:
    waiting = MinorStatus(is_minor=True, has_consent=False)
    assert is_blocked(waiting, require_consent=True, is_admin=False)
    assert not is_blocked(waiting, require_consent=True, is_admin=True)
    assert not is_blocked(waiting, require_consent=False, is_admin=False)
    assert not is_blocked(MinorStatus(True, True), True, False)
    assert not is_blocked(MinorStatus(), True, False)


def test_minor_may_not_join_a_room_with_remote_users() -> None:
    members = {"@t:school.test": "join", "@x:other.test": "invite"}
    assert membership_refusal("@kid:school.test", "join", True, members, [], HERE)
    assert membership_refusal("@kid:school.test", "invite", True, members, [], HERE)
    assert (
        membership_refusal("@kid:school.test", "join", True, {"@t:school.test": "join"}, [], HERE)
        is None
    )
    # A remote user who left does not count.
    assert (
        membership_refusal("@kid:school.test", "join", True, {"@x:other.test": "leave"}, [], HERE)
        is None
    )


def test_remote_user_may_not_enter_a_room_with_a_minor() -> None:
    members = {"@kid:school.test": "join", "@t:school.test": "join"}
    assert membership_refusal("@x:other.test", "invite", False, members, ["@kid:school.test"], HERE)
    assert membership_refusal("@x:other.test", "join", False, members, ["@kid:school.test"], HERE)
    assert membership_refusal("@x:other.test", "join", False, members, [], HERE) is None


def test_leaving_is_always_allowed() -> None:
    members = {"@x:other.test": "join"}
    assert membership_refusal("@kid:school.test", "leave", True, members, [], HERE) is None
    assert membership_refusal("@kid:school.test", "ban", True, members, [], HERE) is None


def test_public_rooms_are_refused_in_every_spelling() -> None:
    assert create_room_refusal({"visibility": "public"})
    assert create_room_refusal({"preset": "public_chat"})
    assert create_room_refusal(
        {
            "initial_state": [
                {"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "public"}}
            ]
        }
    )
    assert create_room_refusal({"preset": "private_chat", "visibility": "private"}) is None
    assert create_room_refusal({"initial_state": "garbage"}) is None
    assert join_rules_refusal({"join_rule": "public"})
    assert join_rules_refusal({"join_rule": "invite"}) is None


def test_directory_hides_minors_from_strangers_only() -> None:
    assert hidden_from(True, "@s:h", "@kid:h", requester_is_admin=False, share_a_room=False)
    assert not hidden_from(True, "@s:h", "@kid:h", requester_is_admin=False, share_a_room=True)
    assert not hidden_from(True, "@a:h", "@kid:h", requester_is_admin=True, share_a_room=False)
    assert not hidden_from(True, "@kid:h", "@kid:h", requester_is_admin=False, share_a_room=False)
    assert not hidden_from(False, "@s:h", "@t:h", requester_is_admin=False, share_a_room=False)


def test_consent_record_validation_names_the_field() -> None:
    good = {
        "guardian": "Ann Smith",
        "relation": "parent",
        "contact": "ann@example.org",
        "evidence": "form-17",
    }
    record, bad = validate_consent(good)
    assert record is not None and bad is None and record.guardian == "Ann Smith"
    for field, value in (
        ("guardian", ""),
        ("relation", "uncle"),
        ("contact", 7),
        ("evidence", None),
    ):
        record, bad = validate_consent({**good, field: value})
        assert record is None and bad == field
