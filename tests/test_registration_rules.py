"""Who may self-register: the pure rules behind the registration module."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from synapse_modules.registration_rules import (
    check_self_registration,
    domain_allowed,
    email_domain_pattern,
    is_reserved,
    is_self_registration,
    skeleton,
)

RESERVED = ("admin", "support", "root", "security")


@pytest.mark.parametrize(
    "name",
    [
        "admin",
        "Admin",
        "adm1n",
        "a.d.m.i.n",
        "admin-",
        "aadmin",
        "4dmin",
        "admin2",
        "admin_01",
        "ADMlN",
        "r00t",
        "supp0rt",
        "s3curity",
        "5upport",
    ],
)
def test_reserved_and_look_alike_names_are_refused(name: str) -> None:
    assert is_reserved(name, RESERVED)


@pytest.mark.parametrize("name", ["alice", "administrator2", "rooted", "supporter", "bob", "adam"])
def test_ordinary_names_pass(name: str) -> None:
    assert not is_reserved(name, RESERVED)


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._-", min_size=1, max_size=20))
def test_skeleton_ignores_separators_and_case(name: str) -> None:
    assert skeleton(name.upper()) == skeleton(name)
    assert skeleton("." + name + "-") == skeleton(name)


def test_admin_only_refuses_everyone() -> None:
    assert check_self_registration("admin_only", "alice", None, RESERVED, ()) is not None


def test_token_mode_refuses_reserved_names_only() -> None:
    assert check_self_registration("token", "alice", None, RESERVED, ()) is None
    refusal = check_self_registration("token", "adm1n", None, RESERVED, ())
    assert refusal is not None and "reserved" in refusal.reason


def test_email_domain_mode_needs_a_verified_address_in_an_allowed_domain() -> None:
    allowed = ("school.example", "staff.school.example")
    assert (
        check_self_registration("email_domain", "alice", "a@school.example", RESERVED, allowed)
        is None
    )
    assert (
        check_self_registration("email_domain", "alice", "A@SCHOOL.EXAMPLE", RESERVED, allowed)
        is None
    )
    for email in (
        None,
        "a@evil.example",
        "a@school.example.evil",
        "a@sub.school.example",
        "school.example",
    ):
        assert (
            check_self_registration("email_domain", "alice", email, RESERVED, allowed) is not None
        )


def test_domain_allowed_is_exact() -> None:
    assert domain_allowed("x@a.org", ("A.org",))
    assert not domain_allowed("x@a.org.evil", ("a.org",))
    assert not domain_allowed("noatsign", ("a.org",))


def test_synapse_pattern_matches_the_same_domains() -> None:
    pattern = re.compile(email_domain_pattern(("school.example", "b.org")))
    assert pattern.match("kid@school.example")
    assert pattern.match("kid@School.Example")
    assert pattern.match("t@b.org")
    assert not pattern.match("kid@schoolXexample")
    assert not pattern.match("kid@evil.school.example")
    assert not pattern.match("kid@school.example.evil")


def test_self_registration_is_told_apart_from_admin_paths() -> None:
    assert is_self_registration([("curl/8", "127.0.0.1")], None)
    assert is_self_registration([], "oidc")
    assert not is_self_registration([], None)
