"""A local FCM HTTP v1 + Google OAuth2 token server, speaking the real wire formats.

Why it exists: the gateway must be tested (and benchmarked) against something that behaves like
FCM on the wire: the JWT-bearer token grant reached through the service account's ``token_uri``,
``POST /v1/projects/{project}/messages:send`` with a Bearer token, and Google error bodies
(``error.status`` + ``details[]`` with ``FcmError.errorCode`` / ``BadRequest.fieldViolations``)
and ``Retry-After``. It serves HTTP/1.1 and HTTP/2 (prior knowledge, h2c) on one port, sets
TCP_NODELAY and answers every request with a single write.

Use it in-process (``with FakeFCM() as fcm: ...``; it runs its own asyncio loop in a thread and
is controlled through thread-safe attributes/methods), or as a process for the benchmark:
``python -m tests.fakes.fake_fcm --latency-ms 20 --write-service-account sa.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import email.utils
import json
import random
import secrets
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings

GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
# FCM v1 Message fields the fake accepts (real FCM rejects unknown names with 400).
MESSAGE_FIELDS = {
    "name",
    "data",
    "notification",
    "android",
    "webpush",
    "apns",
    "fcm_options",
    "token",
    "topic",
    "condition",
    "fid",
}
DATA_LIMIT = 4096

_STATUS_TEXT = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
_GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
_FCM_CODE = {
    400: "INVALID_ARGUMENT",
    403: "SENDER_ID_MISMATCH",
    404: "UNREGISTERED",
    429: "QUOTA_EXCEEDED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}

Response = tuple[int, list[tuple[str, str]], bytes]


@dataclass
class Received:
    """One message FCM accepted."""

    project: str
    message: dict[str, Any]
    message_id: str


@dataclass
class _Failure:
    status: int
    retry_after: str | None
    token: str | None  # only for this device token; None: any


@dataclass
class FakeFCMState:
    """Everything a test may read or change; guarded by ``lock``."""

    latency: float = 0.0
    token_latency: float = 0.0
    token_lifetime: int = 3600
    record: bool = True
    outage: bool = False
    outage_retry_after: str | None = None
    failure_rate: float = 0.0
    failure_status: int = 503
    fail_first_prefix: str = ""  # the first send to each token with this prefix gets a 503
    _failed_once: set[str] = field(default_factory=set)
    unregistered: set[str] = field(default_factory=set)
    invalid: set[str] = field(default_factory=set)
    mismatched: set[str] = field(default_factory=set)
    messages: list[Received] = field(default_factory=list)
    accepted: int = 0
    protocols: set[str] = field(default_factory=set)  # "h2" / "http/1.1" seen on sends
    send_attempts: int = 0
    token_requests: int = 0
    lock: threading.Condition = field(default_factory=threading.Condition)


def google_error(
    status: int,
    message: str,
    fcm_code: str | None = None,
    violations: Iterable[tuple[str, str]] = (),
) -> bytes:
    """A Google API error body as FCM returns it."""
    details: list[dict[str, Any]] = []
    if fcm_code:
        details.append({"@type": FCM_ERROR_TYPE, "errorCode": fcm_code})
    fv = [{"field": f, "description": d} for f, d in violations]
    if fv:
        details.append({"@type": BAD_REQUEST_TYPE, "fieldViolations": fv})
    err: dict[str, Any] = {
        "code": status,
        "message": message,
        "status": _GOOGLE_STATUS.get(status, "UNKNOWN"),
    }
    if details:
        err["details"] = details
    return json.dumps({"error": err}).encode()


def _json(status: int, body: bytes, extra: Iterable[tuple[str, str]] = ()) -> Response:
    return status, [("content-type", "application/json; charset=UTF-8"), *extra], body


class FakeFCMApp:
    """The request handler: pure request → response, plus state bookkeeping."""

    def __init__(self, state: FakeFCMState, seed: int = 0) -> None:
        self.state = state
        self.token_uri = ""  # set once the port is known
        self._keys: dict[str, bytes] = {}  # private_key_id -> public PEM
        self._tokens: dict[str, float] = {}  # access token -> monotonic expiry
        self._failures: deque[_Failure] = deque()
        self._random = random.Random(seed)
        self.connections: set[_Connection] = set()

    def register_key(self, key_id: str, public_pem: bytes) -> None:
        with self.state.lock:
            self._keys[key_id] = public_pem

    def queue_failures(
        self, n: int, status: int, retry_after: str | None, token: str | None
    ) -> None:
        with self.state.lock:
            self._failures.extend(_Failure(status, retry_after, token) for _ in range(n))

    def expire_tokens(self) -> None:
        with self.state.lock:
            self._tokens.clear()

    def delay(self, path: str) -> float:
        return self.state.token_latency if path == "/token" else self.state.latency

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Response:
        if path == "/token":
            if method != "POST":
                return _json(405, b'{"error":"invalid_request"}')
            return self._token(body)
        if path.startswith("/v1/projects/") and path.endswith("/messages:send"):
            if method != "POST":
                return _json(405, google_error(405, "Method not allowed"))
            project = path[len("/v1/projects/") : -len("/messages:send")]
            return self._send(project, headers, body)
        return _json(404, google_error(404, "Requested entity was not found."))

    def _token(self, body: bytes) -> Response:
        from google.auth import jwt

        with self.state.lock:
            self.state.token_requests += 1
            keys = dict(self._keys)
        form = urllib.parse.parse_qs(body.decode("ascii", "replace"))
        if form.get("grant_type") != [JWT_BEARER] or "assertion" not in form:
            return _json(400, b'{"error":"unsupported_grant_type"}')
        try:
            # google-auth signs for Google's own token endpoint whatever token_uri is, as the
            # real server expects; accept that audience or this fake's URI.
            claims = jwt.decode(
                form["assertion"][0], certs=keys, audience=[GOOGLE_TOKEN_AUDIENCE, self.token_uri]
            )
        except Exception as exc:  # any decode/verify failure is an invalid grant
            reason = json.dumps({"error": "invalid_grant", "error_description": str(exc)[:200]})
            return _json(400, reason.encode())
        if "firebase.messaging" not in claims.get(
            "scope", ""
        ) and "cloud-platform" not in claims.get("scope", ""):
            return _json(400, b'{"error":"invalid_scope"}')
        token = "ya29.fake-" + secrets.token_urlsafe(24)
        with self.state.lock:
            lifetime = self.state.token_lifetime
            self._tokens[token] = time.monotonic() + lifetime
        out = {"access_token": token, "expires_in": lifetime, "token_type": "Bearer"}
        return _json(200, json.dumps(out).encode())

    def _send(self, project: str, headers: dict[str, str], body: bytes) -> Response:
        st = self.state
        auth = headers.get("authorization", "")
        bearer = auth[7:] if auth.startswith("Bearer ") else ""
        with st.lock:
            st.send_attempts += 1
            expiry = self._tokens.get(bearer)
        if expiry is None or expiry < time.monotonic():
            return _json(
                401,
                google_error(
                    401,
                    "Request had invalid authentication credentials. Expected OAuth 2 access "
                    "token, login cookie or other valid authentication credential.",
                ),
            )
        try:
            req = json.loads(body)
            message = req["message"]
            if not isinstance(message, dict):
                raise TypeError("message")
        except (ValueError, KeyError, TypeError):
            return _json(400, google_error(400, "Invalid JSON payload received."))
        unknown = sorted(set(message) - MESSAGE_FIELDS)
        if unknown:
            return _json(
                400,
                google_error(
                    400,
                    f'Invalid JSON payload received. Unknown name "{unknown[0]}" at '
                    "'message': Cannot find field.",
                ),
            )
        token = message.get("token")
        failure = self._injected_failure(token)
        if failure is not None:
            extra = [("retry-after", failure.retry_after)] if failure.retry_after else []
            return _json(
                failure.status,
                google_error(failure.status, "Injected failure", _FCM_CODE.get(failure.status)),
                extra,
            )
        if not isinstance(token, str) or not token:
            return _json(
                400, google_error(400, "Recipient of the message is not set.", "INVALID_ARGUMENT")
            )
        if token in st.invalid:
            return _json(
                400,
                google_error(
                    400,
                    "The registration token is not a valid FCM registration token",
                    "INVALID_ARGUMENT",
                    [("message.token", "Invalid registration token")],
                ),
            )
        if token in st.unregistered:
            return _json(404, google_error(404, "Requested entity was not found.", "UNREGISTERED"))
        if token in st.mismatched:
            return _json(403, google_error(403, "SenderId mismatch", "SENDER_ID_MISMATCH"))
        problem = _data_problem(message.get("data"))
        if problem:
            return _json(
                400, google_error(400, problem, "INVALID_ARGUMENT", [("message.data", problem)])
            )
        message_id = f"projects/{project}/messages/0:{secrets.token_hex(8)}"
        with st.lock:
            st.accepted += 1
            if st.record:
                st.messages.append(Received(project, message, message_id))
            st.lock.notify_all()
        return _json(200, json.dumps({"name": message_id}).encode())

    def _injected_failure(self, token: object) -> _Failure | None:
        st = self.state
        with st.lock:
            if st.outage:
                return _Failure(503, st.outage_retry_after, None)
            for i, f in enumerate(self._failures):
                if f.token is None or f.token == token:
                    del self._failures[i]
                    return f
            if st.fail_first_prefix and isinstance(token, str) and \
                    token.startswith(st.fail_first_prefix) and token not in st._failed_once:
                st._failed_once.add(token)
                return _Failure(503, None, None)
            if st.failure_rate and self._random.random() < st.failure_rate:
                return _Failure(st.failure_status, None, None)
        return None


def _data_problem(data: object) -> str:
    if data is None:
        return ""
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        return "Invalid value at 'message.data': values must be strings"
    size = sum(len(k.encode()) + len(v.encode()) for k, v in data.items())
    if size > DATA_LIMIT:
        return f"Message is too big: data payload {size} bytes > {DATA_LIMIT}"
    return ""


def _encode_h1(status: int, headers: list[tuple[str, str]], body: bytes, keep_alive: bool) -> bytes:
    lines = [f"HTTP/1.1 {status} {_STATUS_TEXT.get(status, 'Status')}"]
    lines += [f"{k}: {v}" for k, v in headers]
    lines.append(f"content-length: {len(body)}")
    if not keep_alive:
        lines.append("connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class _Connection(asyncio.Protocol):
    """One client connection: HTTP/1.1 with keep-alive, or HTTP/2 when the preface arrives."""

    def __init__(self, app: FakeFCMApp) -> None:
        self.app = app
        self.loop = asyncio.get_running_loop()
        self.buf = b""
        self.h2: h2.connection.H2Connection | None = None
        self.streams: dict[int, tuple[dict[str, str], bytearray]] = {}
        self.transport: asyncio.Transport | None = None
        self.busy = False  # HTTP/1.1: a response is pending (no pipelining)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.app.connections.add(self)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        if self.h2 is not None:
            self._h2_data(data)
            return
        self.buf += data
        if (
            len(self.buf) >= len(H2_PREFACE)
            and self.buf.startswith(H2_PREFACE)
            or (len(self.buf) < len(H2_PREFACE) and H2_PREFACE.startswith(self.buf))
        ):
            if len(self.buf) < len(H2_PREFACE):
                return
            conn = h2.connection.H2Connection(
                h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
            )
            conn.local_settings = h2.settings.Settings(
                client=False, initial_values={h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 1000}
            )
            conn.initiate_connection()
            self.h2 = conn
            data, self.buf = self.buf, b""
            self._h2_data(data)
            return
        self._h1_process()

    # HTTP/1.1 -----------------------------------------------------------------------------
    def _h1_process(self) -> None:
        while not self.busy:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].decode("latin-1").split("\r\n")
            try:
                method, target, _version = head[0].split(" ", 2)
            except ValueError:
                self._close()
                return
            headers = {}
            for line in head[1:]:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            length = int(headers.get("content-length", "0") or 0)
            if len(self.buf) < end + 4 + length:
                return
            body = self.buf[end + 4 : end + 4 + length]
            self.buf = self.buf[end + 4 + length :]
            keep_alive = headers.get("connection", "").lower() != "close"
            self._note_protocol(target, "http/1.1")
            status, rh, rb = self.app.handle(method, target.split("?")[0], headers, body)
            out = _encode_h1(status, rh, rb, keep_alive)
            self.busy = True
            self._later(self.app.delay(target), self._h1_reply, out, keep_alive)

    def _h1_reply(self, out: bytes, keep_alive: bool) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(out)
        self.busy = False
        if not keep_alive:
            self._close()
        elif self.buf:
            self._h1_process()

    # HTTP/2 -------------------------------------------------------------------------------
    def _h2_data(self, data: bytes) -> None:
        conn = self.h2
        assert conn is not None
        try:
            events = conn.receive_data(data)
        except Exception:
            self._close()
            return
        for ev in events:
            if isinstance(ev, h2.events.RequestReceived):
                hdrs = {str(k): str(v) for k, v in (ev.headers or [])}
                self.streams[ev.stream_id] = (hdrs, bytearray())
            elif isinstance(ev, h2.events.DataReceived):
                if ev.stream_id in self.streams:
                    self.streams[ev.stream_id][1].extend(ev.data or b"")
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                self._h2_request(ev.stream_id)
            elif isinstance(ev, h2.events.StreamReset):
                self.streams.pop(ev.stream_id, None)
        self._flush()

    def _h2_request(self, stream_id: int) -> None:
        item = self.streams.pop(stream_id, None)
        if item is None:
            return
        hdrs, body = item
        path = hdrs.get(":path", "/").split("?")[0]
        self._note_protocol(path, "h2")
        status, rh, rb = self.app.handle(hdrs.get(":method", "GET"), path, hdrs, bytes(body))
        self._later(self.app.delay(path), self._h2_reply, stream_id, status, rh, rb)

    def _h2_reply(
        self, stream_id: int, status: int, headers: list[tuple[str, str]], body: bytes
    ) -> None:
        conn = self.h2
        if conn is None or self.transport is None or self.transport.is_closing():
            return
        try:
            conn.send_headers(
                stream_id, [(":status", str(status)), *headers, ("content-length", str(len(body)))]
            )
            conn.send_data(stream_id, body, end_stream=True)
        except Exception:  # the client reset the stream meanwhile
            return
        self._flush()

    def _flush(self) -> None:
        if self.h2 is not None and self.transport is not None:
            out = self.h2.data_to_send()
            if out:
                self.transport.write(out)

    def _note_protocol(self, path: str, protocol: str) -> None:
        if path.endswith("/messages:send"):
            with self.app.state.lock:
                self.app.state.protocols.add(protocol)

    def _later(self, delay: float, fn: Any, *args: Any) -> None:
        if delay > 0:
            self.loop.call_later(delay, fn, *args)
        else:
            fn(*args)

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.app.connections.discard(self)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class FakeFCM:
    """The fake FCM + OAuth2 server on 127.0.0.1, running in a background thread."""

    def __init__(
        self, latency: float = 0.0, port: int = 0, record: bool = True, seed: int = 0,
        tls: bool = False,
    ) -> None:
        """``tls``: the FCM API is served over TLS (ALPN h2 and http/1.1, a self-signed
        certificate in ``ca_file``) like the real one; the token endpoint stays plain http on
        its own port (google-auth would not trust the test CA)."""
        self.state = FakeFCMState(latency=latency, record=record)
        self.app = FakeFCMApp(self.state, seed=seed)
        self._port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._token_server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.token_port = 0
        self.tls = tls
        self.ca_file: Path | None = None
        self._tmp: Any = None

    # lifecycle ------------------------------------------------------------------------------
    def start(self) -> FakeFCM:
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), daemon=True, name="fake-fcm"
        )
        self._thread.start()
        if not ready.wait(10) or not self.port:
            raise RuntimeError("fake FCM did not start")
        return self

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)

        async def serve() -> None:
            ssl_context = self._server_tls() if self.tls else None
            self._server = await loop.create_server(
                lambda: _Connection(self.app), "127.0.0.1", self._port, backlog=1024,
                ssl=ssl_context,
            )
            self.port = self._server.sockets[0].getsockname()[1]
            self.token_port = self.port
            if self.tls:
                self._token_server = await loop.create_server(
                    lambda: _Connection(self.app), "127.0.0.1", 0)
                self.token_port = self._token_server.sockets[0].getsockname()[1]
            self.app.token_uri = self.token_uri
            ready.set()

        loop.run_until_complete(serve())
        try:
            loop.run_forever()
        finally:
            loop.close()

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return

        async def shutdown() -> None:
            for server in (self._server, self._token_server):
                if server is not None:
                    server.close()
            for conn in list(self.app.connections):
                conn.abort()
            loop.stop()

        asyncio.run_coroutine_threadsafe(shutdown(), loop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None

    def __enter__(self) -> FakeFCM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # addresses ------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def token_uri(self) -> str:
        return f"http://127.0.0.1:{self.token_port}/token"

    def _server_tls(self) -> ssl.SSLContext:
        """A self-signed certificate for 127.0.0.1; its PEM is ``ca_file`` for clients."""
        import datetime
        import ipaddress
        import tempfile

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-fcm.test")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256()))
        self._tmp = tempfile.TemporaryDirectory(prefix="fake-fcm-tls-")
        cert_file = Path(self._tmp.name) / "cert.pem"
        key_file = Path(self._tmp.name) / "key.pem"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert_file, key_file)
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        self.ca_file = cert_file
        return ctx

    # controls -------------------------------------------------------------------------------
    def set(self, **changes: Any) -> None:
        """Change state fields (latency, outage, failure_rate, token_lifetime, ...)."""
        with self.state.lock:
            for key, value in changes.items():
                if not hasattr(self.state, key) or key == "lock":
                    raise AttributeError(key)
                setattr(self.state, key, value)

    def fail_next(
        self,
        n: int = 1,
        status: int = 503,
        retry_after: str | float | None = None,
        token: str | None = None,
    ) -> None:
        """The next ``n`` sends (to ``token``, or any) fail with ``status`` (Google error body)."""
        ra = None if retry_after is None else str(retry_after)
        self.app.queue_failures(n, status, ra, token)

    def expire_tokens(self) -> None:
        """Forget every issued access token, as if they all expired (the next send gets 401)."""
        self.app.expire_tokens()

    @property
    def messages(self) -> list[Received]:
        with self.state.lock:
            return list(self.state.messages)

    @property
    def protocols(self) -> frozenset[str]:
        with self.state.lock:
            return frozenset(self.state.protocols)

    def counters(self) -> dict[str, int]:
        with self.state.lock:
            return {
                "accepted": self.state.accepted,
                "send_attempts": self.state.send_attempts,
                "token_requests": self.state.token_requests,
            }

    def wait_for_messages(self, count: int, timeout: float = 30.0) -> list[Received]:
        """Block until at least ``count`` messages arrived (or ``timeout``); return them all."""
        deadline = time.monotonic() + timeout
        with self.state.lock:
            while len(self.state.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.state.lock.wait(left)
            return list(self.state.messages)

    def write_service_account(
        self, path: Path, project_id: str = "chat500-test", client_email: str = ""
    ) -> Path:
        """A service-account JSON whose ``token_uri`` is this fake, with a fresh RSA key."""
        key_id, public_pem, info = make_service_account(self.token_uri, project_id, client_email)
        self.app.register_key(key_id, public_pem)
        return write_json_0600(path, info)


def make_service_account(
    token_uri: str, project_id: str, client_email: str = ""
) -> tuple[str, bytes, dict[str, str]]:
    """A new RSA key and the service-account JSON fields Google issues for it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key_id = secrets.token_hex(20)
    email_addr = client_email or f"firebase-adminsdk@{project_id}.iam.gserviceaccount.com"
    info = {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": key_id,
        "private_key": private_pem,
        "client_email": email_addr,
        "client_id": str(random.randrange(10**20, 10**21)),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": "",
        "universe_domain": "googleapis.com",
    }
    return key_id, public_pem, info


def write_json_0600(path: Path, info: dict[str, str]) -> Path:
    import os

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(info, f)
    return path


def http_date(seconds_from_now: float) -> str:
    """A ``Retry-After`` value in HTTP-date form."""
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


def main(argv: list[str] | None = None) -> int:
    """Run the fake as a process (the benchmark's FCM); prints ``listening <url>`` when ready."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--failure-rate", type=float, default=0.0)
    p.add_argument("--failure-status", type=int, default=503)
    p.add_argument("--fail-first-prefix", default="",
                   help="the first send to each token with this prefix fails with 503")
    p.add_argument("--project", default="chat500-bench")
    p.add_argument("--write-service-account", type=Path, action="append", default=[])
    p.add_argument("--record", action="store_true", help="keep received messages in memory")
    args = p.parse_args(argv)
    fcm = FakeFCM(latency=args.latency_ms / 1000, port=args.port, record=args.record).start()
    fcm.set(failure_rate=args.failure_rate, failure_status=args.failure_status,
            fail_first_prefix=args.fail_first_prefix)
    for path in args.write_service_account:
        fcm.write_service_account(path, args.project)
    print(f"listening {fcm.base_url}", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    while not done.wait(0.5):
        pass
    fcm.stop()
    print(json.dumps(fcm.counters()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
