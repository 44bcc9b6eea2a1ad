"""Pure rules of the push gateway: validation, payload, FCM error mapping, options, routing."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pusher_gateway.config import AppConfig
from pusher_gateway.dedup import MemoryDedup, dedup_key
from pusher_gateway.dispatch import AppRouter, DeviceResult, http_answer, redact
from pusher_gateway.errors import backoff_delay, classify, parse_retry_after
from pusher_gateway.fcm import build_message
from pusher_gateway.fcm_options import deep_merge, validate_fcm_options
from pusher_gateway.payload import (
    DATA_LIMIT,
    FIXED_KEYS,
    build_data,
    data_size,
    shrink,
    truncate_utf8,
)
from pusher_gateway.validation import InvalidNotification, parse_notification
from tests.fakes.fake_fcm import google_error


def body(**notification: object) -> dict[str, object]:
    n: dict[str, object] = {"devices": [{"app_id": "com.acme.android", "pushkey": "pk1"}]}
    n.update(notification)
    return {"notification": n}


def app(**kw: object) -> AppConfig:
    base: dict[str, object] = {"app_id": "com.acme.android", "fcm_project": "p",
                               "service_account": Path("/nonexistent")}
    base.update(kw)
    return AppConfig(**base)  # type: ignore[arg-type]


# validation ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("raw", "field"), [
    ([], "body"),
    ({}, "notification"),
    ({"notification": []}, "notification"),
    ({"notification": {}}, "notification.devices"),
    ({"notification": {"devices": []}}, "notification.devices"),
    ({"notification": {"devices": [1]}}, "notification.devices[0]"),
    ({"notification": {"devices": [{"pushkey": "x"}]}}, "notification.devices[0].app_id"),
    ({"notification": {"devices": [{"app_id": "a"}]}}, "notification.devices[0].pushkey"),
    ({"notification": {"devices": [{"app_id": "a", "pushkey": ""}]}},
     "notification.devices[0].pushkey"),
    ({"notification": {"devices": [{"app_id": "a", "pushkey": "x" * 513}]}},
     "notification.devices[0].pushkey"),
    ({"notification": {"devices": [{"app_id": "a", "pushkey": 5}]}},
     "notification.devices[0].pushkey"),
    ({"notification": {"devices": [{"app_id": "a", "pushkey": "k", "pushkey_ts": "1"}]}},
     "notification.devices[0].pushkey_ts"),
    ({"notification": {"devices": [{"app_id": "a", "pushkey": "k", "data": []}]}},
     "notification.devices[0].data"),
    ({"notification": {"devices": [{"app_id": "a", "pushkey": "k", "data": {"format": 1}}]}},
     "notification.devices[0].data.format"),
    (body(event_id=5), "notification.event_id"),
    (body(event_id="$" + "e" * 300), "notification.event_id"),
    (body(room_id="\ud800"), "notification.room_id"),
    (body(prio="urgent"), "notification.prio"),
    (body(counts=[]), "notification.counts"),
    (body(counts={"unread": -1}), "notification.counts.unread"),
    (body(counts={"unread": True}), "notification.counts.unread"),
    (body(counts={"missed_calls": 1.5}), "notification.counts.missed_calls"),
    (body(user_is_target="yes"), "notification.user_is_target"),
    (body(content="text"), "notification.content"),
])
def test_invalid_bodies_name_the_field(raw: object, field: str) -> None:
    with pytest.raises(InvalidNotification) as err:
        parse_notification(raw)
    assert str(err.value).startswith(field + ":") or str(err.value).startswith(field + " ")


def test_too_many_devices() -> None:
    devices = [{"app_id": "a", "pushkey": f"k{i}"} for i in range(4)]
    with pytest.raises(InvalidNotification, match="notification.devices: at most 3"):
        parse_notification({"notification": {"devices": devices}}, max_devices=3)


def test_synapse_badge_update_and_extra_fields_are_accepted() -> None:
    """Synapse's badge-only push: ``id: ""``, ``type: null``, ``sender: ""`` and no event."""
    n = parse_notification({"notification": {
        "id": "", "type": None, "sender": "", "counts": {"unread": 2},
        "devices": [{"app_id": "a", "pushkey": "k", "pushkey_ts": 12, "data": {}}],
        "future_field": {"x": 1}}})
    assert n.event_id == "" and n.unread == 2 and n.type == ""
    assert n.devices[0].pushkey_ts == 12


def test_deprecated_id_is_the_event_id_fallback() -> None:
    assert parse_notification(body(id="$legacy")).event_id == "$legacy"
    assert parse_notification(body(id="$legacy", event_id="$new")).event_id == "$new"


# payload -------------------------------------------------------------------------------------
def test_event_id_only_carries_ids_and_counts_only() -> None:
    n = parse_notification({"notification": {
        "event_id": "$e", "room_id": "!r:x", "prio": "low", "sender": "@a:x",
        "sender_display_name": "Alice", "room_name": "Secret plans",
        "content": {"body": "hello"}, "counts": {"unread": 4, "missed_calls": 1},
        "devices": [{"app_id": "a", "pushkey": "k", "data": {"format": "event_id_only"}}]}})
    assert build_data(n, n.devices[0]) == {
        "event_id": "$e", "room_id": "!r:x", "unread": "4", "missed_calls": "1"}


def test_deployment_policy_forces_event_id_only() -> None:
    n = parse_notification(body(event_id="$e", room_id="!r", sender="@a:x", room_name="Plans",
                                counts={"unread": 1}))
    assert build_data(n, n.devices[0], event_id_only=True) == {
        "event_id": "$e", "room_id": "!r", "unread": "1"}
    assert "sender" in build_data(n, n.devices[0])


def test_full_format_is_string_only_and_never_invents_text() -> None:
    n = parse_notification({"notification": {
        "event_id": "$e", "room_id": "!r:x", "type": "m.room.message", "sender": "@a:x",
        "sender_display_name": "Alice", "user_is_target": False, "counts": {"unread": 1},
        "devices": [{"app_id": "a", "pushkey": "k"}]}})
    data = build_data(n, n.devices[0])
    assert all(isinstance(v, str) for v in data.values())
    assert data["user_is_target"] == "false" and data["prio"] == "high"
    assert not any("body" in k for k in data)  # no content arrived, none is added


def test_content_sent_by_the_homeserver_is_flattened_to_strings() -> None:
    n = parse_notification(body(event_id="$e", content={
        "msgtype": "m.text", "body": "hi", "n": 3, "flag": True, "nested": {"a": [1]}}))
    data = build_data(n, n.devices[0])
    assert data["content_msgtype"] == "m.text" and data["content_n"] == "3"
    assert data["content_flag"] == "true" and data["content_nested"] == '{"a":[1]}'


def test_shrink_cuts_the_largest_field_first_and_keeps_ids() -> None:
    data = {"event_id": "$e" * 100, "room_id": "!r", "room_name": "R" * 5000,
            "sender_display_name": "S" * 300}
    out = shrink(data)
    assert data_size(out) <= DATA_LIMIT
    assert out["event_id"] == data["event_id"] and out["room_id"] == "!r"
    assert out["sender_display_name"] == data["sender_display_name"]  # the big one paid
    assert out["room_name"].startswith("RRR")


def test_truncate_is_utf8_safe() -> None:
    assert truncate_utf8("héllo", 2) == "h"  # 'é' is two bytes: not split
    assert truncate_utf8("日本語", 4) == "日"
    assert truncate_utf8("abc", 10) == "abc"


_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=3000)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["room_name", "sender_display_name", "sender", "type",
                                        "content_body", "content_x", "room_alias"]), _text),
       st.text(max_size=60, alphabet="abc$!:"))
def test_shrink_always_fits_and_keeps_valid_prefixes(free: dict[str, str], eid: str) -> None:
    data = {"event_id": eid, "room_id": "!room:example.org", **free}
    out = shrink(data)
    assert data_size(out) <= DATA_LIMIT
    for key, value in out.items():
        value.encode("utf-8")  # still valid UTF-8
        assert data[key].startswith(value)
        if key in FIXED_KEYS:
            assert value == data[key]


# FCM error mapping ---------------------------------------------------------------------------
@pytest.mark.parametrize(("status", "fcm_code", "violations", "kind"), [
    (404, "UNREGISTERED", (), "rejected"),
    (403, "SENDER_ID_MISMATCH", (), "rejected"),
    (400, "INVALID_ARGUMENT", [("message.token", "Invalid registration token")], "rejected"),
    (400, "INVALID_ARGUMENT", [("message.data", "too big")], "failed"),
    (400, None, (), "failed"),
    (404, None, (), "failed"),  # a wrong project URL must not delete every pusher
    (429, "QUOTA_EXCEEDED", (), "retry"),
    (503, "UNAVAILABLE", (), "retry"),
    (500, "INTERNAL", (), "retry"),
    (502, None, (), "retry"),
    (401, None, (), "reauth"),
    (403, "THIRD_PARTY_AUTH_ERROR", (), "failed"),
])
def test_classify_reads_the_error_body(status: int, fcm_code: str | None,
                                       violations: list[tuple[str, str]], kind: str) -> None:
    out = classify(status, google_error(status, "x", fcm_code, violations), None, 0.0)
    assert out.kind == kind
    if fcm_code:
        assert out.code == fcm_code


def test_classify_survives_garbage_bodies() -> None:
    for raw in (b"", b"<html>", b"[]", b'{"error": 1}', b'{"error": {"details": [1, {}]}}',
                b"\xff\xfe"):
        assert classify(503, raw, None, 0).kind == "retry"
        assert classify(400, raw, None, 0).kind == "failed"


def test_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("7", 0.0) == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412490.0) == 0.0
    assert parse_retry_after("soon", 0.0) is None
    assert parse_retry_after(None, 0.0) is None
    out = classify(503, google_error(503, "x", "UNAVAILABLE"), "3", 0.0)
    assert out.retry_after == 3.0


def test_backoff_is_jittered_bounded_and_honours_retry_after() -> None:
    rng = random.Random(1)
    delays = [backoff_delay(a, None, 0.25, 5.0, rng) for a in range(1, 12)]
    assert all(0 < d <= 5.0 for d in delays)
    assert delays[0] <= 0.25 and max(delays) > 2.0
    assert backoff_delay(1, 9.0, 0.25, 5.0, rng) == 9.0


# fcm_options ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("options", "problem"), [
    ({"android": {"prioirty": "high"}}, "android.prioirty: unknown FCM v1 field "
                                        "(did you mean 'priority'?)"),
    ({"andriod": {}}, "andriod: unknown FCM v1 field (did you mean 'android'?)"),
    ({"android": {"priority": "urgent"}}, "android.priority: must be one of"),
    ({"android": {"ttl": "1 hour"}}, "android.ttl: expected a duration"),
    ({"android": {"direct_boot_ok": "yes"}}, "android.direct_boot_ok: expected true/false"),
    ({"apns": {"headers": {"apns-priority": 10}}}, "apns.headers: expected a map"),
    ({"notification": {"title": "x"}}, "notification: not allowed"),
    ({"token": "x"}, "token: not allowed"),
    ({"data": {}}, "data: not allowed"),
])
def test_fcm_options_validation(options: dict[str, object], problem: str) -> None:
    assert validate_fcm_options(options).startswith(problem)


def test_fcm_options_valid_and_deep_merge() -> None:
    options: dict[str, Any] = {
        "android": {"ttl": "3600s", "collapse_key": "chat", "priority": "normal",
                    "fcm_options": {"analytics_label": "l"}},
        "apns": {"headers": {"apns-push-type": "background"}}}
    assert validate_fcm_options(options) == ""
    merged = deep_merge(options, {"android": {"priority": "high"}, "token": "t"})
    assert merged["android"] == {"ttl": "3600s", "collapse_key": "chat", "priority": "high",
                                 "fcm_options": {"analytics_label": "l"}}
    assert options["android"]["priority"] == "normal"  # inputs untouched


@pytest.mark.filterwarnings("ignore:Message.token is deprecated")
def test_build_message_uses_firebase_encoding_and_merges_options() -> None:
    n = parse_notification(body(event_id="$e", room_id="!r", prio="low"))
    msg = build_message(app(fcm_options={"android": {"ttl": "60s", "priority": "high"}}), n,
                        n.devices[0])
    assert msg["token"] == "pk1"
    assert msg["android"] == {"ttl": "60s", "priority": "normal"}  # prio low wins
    assert "notification" not in msg
    ios = build_message(app(platform="ios"), n, n.devices[0])
    assert ios["apns"] == {"headers": {"apns-priority": "5"}}
    json.dumps(msg)


# routing, answers, dedup ---------------------------------------------------------------------
def test_router_exact_before_glob() -> None:
    exact, glob = app(app_id="com.acme.chat.android"), app(app_id="com.acme.*")
    router = AppRouter((glob, exact))
    assert router.find("com.acme.chat.android") is exact
    assert router.find("com.acme.other") is glob
    assert router.find("org.other") is None


def test_http_answer() -> None:
    ok = DeviceResult("a", "delivered")
    assert http_answer([ok, DeviceResult("b", "rejected")]) == (200, {"rejected": ["b"]})
    assert http_answer([ok, DeviceResult("c", "duplicate")])[0] == 200
    assert http_answer([ok, DeviceResult("b", "rejected"), DeviceResult("c", "retry")])[0] \
        == 503
    assert http_answer([DeviceResult("c", "shed")])[0] == 503
    assert http_answer([DeviceResult("c", "failed"), DeviceResult("d", "retry")])[0] == 502


def test_redact_never_shows_the_pushkey() -> None:
    key = "fcm-token-" + "z" * 150
    assert key not in redact(key) and len(redact(key)) < 20


def test_memory_dedup_lifecycle() -> None:
    now = [0.0]
    d = MemoryDedup(ttl=100, pending_ttl=10, max_entries=3, clock=lambda: now[0])
    k = dedup_key("pk", "$e")

    async def scenario() -> None:
        assert await d.claim(k) == "new"
        assert await d.claim(k) == "busy"
        await d.release(k)
        assert await d.claim(k) == "new"
        await d.complete(k)
        assert await d.claim(k) == "done"
        now[0] = 101
        assert await d.claim(k) == "new"  # expired
        for i in range(5):
            await d.claim(dedup_key("pk", str(i)))
        assert len(d) <= 3

    asyncio.run(scenario())
    assert "pk" not in k


_any_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["event_id", "room_id", "prio", "counts", "unread", "devices", "app_id",
                         "pushkey", "data", "format", "content", "notification", "room_name",
                         "user_is_target", "pushkey_ts", "x"]) | st.text(max_size=5),
        inner, max_size=6),
    max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(_any_json)
def test_any_json_is_either_a_notification_or_a_named_error(raw: object) -> None:
    try:
        n = parse_notification(raw)
    except InvalidNotification as exc:
        assert ":" in str(exc) and "\n" not in str(exc)
        return
    for device in n.devices:
        data = build_data(n, device)
        assert data_size(data) <= DATA_LIMIT
        assert all(isinstance(v, str) for v in data.values())
