"""Talking to FCM HTTP v1: credentials and message encoding by firebase-admin, sending by us.

firebase-admin owns what it is good at (service-account credentials, the JWT-bearer token
grant through the account's ``token_uri``, ``messaging.Message`` validation and encoding).
The HTTP sending is ours: one pooled ``httpx.AsyncClient`` (HTTP/2 where available) shared by
all apps, on the reactor's asyncio loop, so latency, retries, budgets and error mapping are
under the gateway's control rather than a library's thread pool.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import random
import ssl
import sys
import time
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

try:  # httpcore looks sniffio up on every request; a failed import there costs ~0.2 ms each.
    import sniffio  # noqa: F401
except ImportError:
    sys.modules.setdefault("sniffio", None)  # type: ignore[arg-type]

import firebase_admin
import httpx
from firebase_admin import credentials, messaging

from pusher_gateway.config import AppConfig, GatewayConfig
from pusher_gateway.errors import Outcome, backoff_delay, classify
from pusher_gateway.fcm_options import deep_merge
from pusher_gateway.http1_client import Http1Pool, HttpError
from pusher_gateway.metrics import Metrics
from pusher_gateway.payload import build_data
from pusher_gateway.validation import Device, Notification

log = logging.getLogger("pusher_gateway.fcm")
# FCM v1 still addresses registration tokens as ``token``; firebase-admin 7 warns on every use.
warnings.filterwarnings("ignore", message="Message.token is deprecated",
                        category=DeprecationWarning)

_ENCODE = messaging._MessagingService.encode_message  # firebase-admin's v1 JSON encoder
_HEADERS = {
    "content-type": "application/json; charset=UTF-8",
    "x-goog-api-format-version": "2",
    "x-firebase-client": f"fire-admin-python/{firebase_admin.__version__}",
}
# One encoder for every send: ``json.dumps`` with ``separators`` builds a new one per call.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))
_HEADER_LINES = "".join(f"{k}: {v}\r\n" for k, v in _HEADERS.items())


class MessageTemplate:
    """One app's v1 message parts that do not change per notification (the platform priority
    block and the app's ``fcm_options``), encoded by firebase-admin and merged once per
    priority. Per device only ``token`` and ``data`` go through the encoder. Messages share
    the template's nested dicts: treat them as read-only (they are only serialised)."""

    def __init__(self, app: AppConfig) -> None:
        self._static = {prio: self._encode_static(app, prio == "high")
                        for prio in ("high", "low")}

    @staticmethod
    def _encode_static(app: AppConfig, high: bool) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if app.platform == "android":
            kwargs["android"] = messaging.AndroidConfig(priority="high" if high else "normal")
        elif app.platform == "ios":
            kwargs["apns"] = messaging.APNSConfig(
                headers={"apns-priority": "10" if high else "5"})
        else:
            kwargs["webpush"] = messaging.WebpushConfig(
                headers={"Urgency": "high" if high else "normal"})
        msg = messaging.Message(**kwargs)
        msg.token = "-"  # the encoder insists on a target; the real one is added per device
        encoded: dict[str, Any] = _ENCODE(msg)
        del encoded["token"]
        return deep_merge(app.fcm_options, encoded) if app.fcm_options else encoded

    def build(self, n: Notification, device: Device,
              event_id_only: bool = False) -> dict[str, Any]:
        msg = messaging.Message(data=build_data(n, device, event_id_only=event_id_only))
        # FCM v1's registration-token field, set as an attribute: the constructor argument
        # raises (and we filter) a DeprecationWarning on every message.
        msg.token = device.pushkey
        encoded: dict[str, Any] = _ENCODE(msg)
        return deep_merge(self._static[n.prio], encoded)


def build_message(app: AppConfig, n: Notification, device: Device,
                  event_id_only: bool = False) -> dict[str, Any]:
    """The v1 ``message`` for one device, encoded (and validated) by firebase-admin, with the
    app's ``fcm_options`` underneath: the notification's own fields win. (The dispatcher keeps
    one ``MessageTemplate`` per app instead of building one per message.)"""
    return MessageTemplate(app).build(n, device, event_id_only)


class AccessTokens:
    """A shared OAuth2 access token for one service account: refreshed ahead of expiry in the
    background, and fetched by one request at a time however many sends are waiting."""

    def __init__(self, service_account: Path, metrics: Metrics,
                 refresh_ahead: float = 300.0) -> None:
        self._cred = credentials.Certificate(str(service_account))
        self._metrics = metrics
        self._refresh_ahead = refresh_ahead
        self._token = ""
        self._expiry = 0.0  # monotonic
        self._inflight: asyncio.Future[str] | None = None

    def current(self) -> str:
        """The token when one is valid (starting a background refresh when it is close to
        expiry), else ''. Synchronous: the common case costs no task."""
        now = time.monotonic()
        if self._token and now < self._expiry - self._refresh_ahead:
            return self._token
        if self._token and now < self._expiry:
            self._start_refresh()  # still valid: use it, refresh behind it
            return self._token
        return ""

    async def get(self) -> str:
        return self.current() or await asyncio.shield(self._start_refresh())

    def invalidate(self, token: str) -> None:
        """FCM refused ``token`` (401): the next ``get`` fetches a new one."""
        if token == self._token:
            self._token, self._expiry = "", 0.0

    def _start_refresh(self) -> asyncio.Future[str]:
        if self._inflight is None or self._inflight.done():
            fut = asyncio.ensure_future(self._refresh())
            # A background refresh nobody awaits must not log "exception never retrieved".
            fut.add_done_callback(lambda f: f.cancelled() or f.exception())
            self._inflight = fut
        return self._inflight

    async def _refresh(self) -> str:
        loop = asyncio.get_running_loop()
        try:
            # google-auth's token grant is blocking (requests); once an hour, in a thread.
            info = await loop.run_in_executor(None, self._cred.get_access_token)
        except Exception as exc:
            self._metrics.token_refreshes.labels("error").inc()
            log.warning("OAuth2 token fetch failed: %s", type(exc).__name__)
            raise
        self._metrics.token_refreshes.labels("ok").inc()
        expiry: datetime.datetime | None = info.expiry
        lifetime = 3600.0
        if expiry is not None:
            utc_now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
            lifetime = (expiry - utc_now).total_seconds()
        self._token = str(info.access_token)
        self._expiry = time.monotonic() + lifetime
        return self._token


class FcmSender:
    """Sends v1 messages with retries inside a deadline; one instance per gateway process."""

    def __init__(self, config: GatewayConfig, metrics: Metrics,
                 rng: random.Random | None = None) -> None:
        self._config = config
        self._metrics = metrics
        self._rng = rng or random.Random()
        base = config.fcm_base_url
        # HTTP/2 where it is available: negotiated over TLS (httpx), or h2c when asked for.
        # Plain http without h2c, or ``fcm_http: http1``: the lean HTTP/1.1 pool.
        lean = config.fcm_http == "http1" or (config.fcm_http == "auto"
                                              and base.startswith("http://"))
        self.lean: Http1Pool | None = None
        self.client: httpx.AsyncClient | None = None
        tls = ssl.create_default_context(cafile=config.fcm_ca_file or None)
        if lean:
            self.lean = Http1Pool(base, config.fcm_max_connections, tls)
        else:
            self.client = httpx.AsyncClient(
                verify=tls,
                http1=config.fcm_http != "h2c",
                http2=True,
                limits=httpx.Limits(max_connections=config.fcm_max_connections,
                                    max_keepalive_connections=config.fcm_max_connections),
                timeout=config.request_timeout_seconds,
                trust_env=False,
            )
        base_path = urlsplit(base).path.rstrip("/")
        self._tokens: dict[Path, AccessTokens] = {}
        for app in config.apps:
            if app.service_account not in self._tokens:
                self._tokens[app.service_account] = AccessTokens(app.service_account, metrics)
        self._urls = {app.app_id: f"{base}/v1/projects/{app.fcm_project}/messages:send"
                      for app in config.apps}
        self._paths = {app.app_id: f"{base_path}/v1/projects/{app.fcm_project}/messages:send"
                       for app in config.apps}

    async def send(self, app: AppConfig, message: dict[str, Any], deadline: float) -> Outcome:
        """Delivered, rejected or failed; ``retry`` means the deadline ran out (answer 5xx)."""
        body = _COMPACT_JSON.encode({"message": message}).encode()
        tokens = self._tokens[app.service_account]
        url = self._paths[app.app_id] if self.lean is not None else self._urls[app.app_id]
        cfg, m = self._config, self._metrics
        attempt, reauthed = 0, False
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return Outcome("retry", "DEADLINE")
            outcome, token = await self._attempt(tokens, url, body, remaining)
            m.child(m.fcm_outcomes, app.app_id, outcome.code).inc()
            if outcome.kind in ("delivered", "rejected", "failed"):
                return outcome
            if outcome.kind == "reauth":
                tokens.invalidate(token)
                if not reauthed:  # a token revoked early: one immediate retry with a fresh one
                    reauthed = True
                    continue
            attempt += 1
            delay = backoff_delay(attempt, outcome.retry_after, cfg.retry_base_seconds,
                                  cfg.retry_max_delay_seconds, self._rng)
            if time.monotonic() + delay >= deadline:
                return Outcome("retry", outcome.code, outcome.retry_after)
            m.retries.labels(app.app_id, outcome.code).inc()
            await asyncio.sleep(delay)

    async def _attempt(self, tokens: AccessTokens, url: str, body: bytes,
                       remaining: float) -> tuple[Outcome, str]:
        token = tokens.current()
        if not token:
            try:
                token = await asyncio.wait_for(tokens.get(), remaining)
            except Exception:
                return Outcome("retry", "OAUTH_TOKEN"), ""
        # The deadline decides whether an attempt *starts*; one already at FCM gets its full
        # timeout, because cutting it short cannot unsend it: the homeserver's retry would
        # then notify twice. Budget + timeout stay under the homeserver's 60 s (config check).
        timeout = self._config.request_timeout_seconds
        started = time.perf_counter()
        try:
            if self.lean is not None:
                r = await self.lean.post(url, f"{_HEADER_LINES}authorization: Bearer {token}\r\n",
                                         body, timeout)
                status, content, retry_after = r.status, r.body, r.headers.get("retry-after")
            else:
                assert self.client is not None
                headers = dict(_HEADERS)
                headers["authorization"] = f"Bearer {token}"
                resp = await self.client.post(url, content=body, headers=headers,
                                              timeout=timeout)
                content = await resp.aread()
                status, retry_after = resp.status_code, resp.headers.get("retry-after")
        except (httpx.HTTPError, HttpError) as exc:
            log.debug("FCM transport error: %s", type(exc).__name__)
            return Outcome("retry", "NETWORK"), token
        finally:
            self._metrics.fcm_seconds.observe(time.perf_counter() - started)
        return classify(status, content, retry_after, time.time()), token

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()
        if self.lean is not None:
            await self.lean.aclose()
