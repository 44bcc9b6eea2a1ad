"""The organization spec: typed, validated once by ``spec_loader``, then trusted everywhere.

Every section has safe defaults that keep the privacy policy's promises: federation, analytics,
calls and email off; registration admin-only; minors off; no message content in pushes.
Durations are milliseconds (``Duration``) and sizes bytes (``Size``); the loader accepts
``30d``/``12h``/``90m``/``45s`` and ``50M``/``2G``/``512K`` in the YAML.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NewType

Duration = NewType("Duration", int)  # milliseconds
Size = NewType("Size", int)  # bytes

DAY_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True)
class Org:
    """Who the deployment is for; ``slug`` names the bundle directory and the database."""

    slug: str
    display_name: str


@dataclass(frozen=True)
class Server:
    server_name: str
    public_baseurl: str = ""  # default: https://<server_name>/
    web_client_url: str = ""  # where the branded Element Web is served; default: public_baseurl
    bind_address: str = "127.0.0.1"
    port: int = 8008
    admin_contact: str = ""  # mailto: or URL shown in well-known/support


@dataclass(frozen=True)
class Database:
    engine: Literal["sqlite", "postgres"] = "sqlite"
    path: str = ""  # sqlite file; default: <bundle>/data/homeserver.db
    host: str = "127.0.0.1"
    port: int = 5432
    name: str = ""  # default: chat500_<slug with _>
    user: str = ""
    password_file: str = ""  # default: the bundle's generated secrets/db_password
    cp_min: int = 5
    cp_max: int = 10


@dataclass(frozen=True)
class Colors:
    primary: str = "#0b5cad"
    accent: str = "#0dbd8b"
    background: str = "#ffffff"


@dataclass(frozen=True)
class Branding:
    brand: str = ""  # default: org.display_name
    logo: str = ""  # path to an image file, relative to the spec file
    theme: Literal["light", "dark"] = "light"
    colors: Colors = field(default_factory=Colors)
    privacy_policy_url: str = ""
    terms_url: str = ""
    support_url: str = ""
    support_email: str = ""
    android_app_id: str = ""  # Play Store package, e.g. com.acme.chat
    ios_bundle_id: str = ""
    android_store_url: str = ""
    ios_store_url: str = ""


@dataclass(frozen=True)
class Registration:
    mode: Literal["admin_only", "token", "email_domain"] = "admin_only"
    allowed_email_domains: tuple[str, ...] = ()
    reserved_names: tuple[str, ...] = (
        "admin",
        "administrator",
        "root",
        "support",
        "help",
        "security",
        "system",
        "server",
        "moderator",
        "noreply",
    )
    refused_message: str = "Accounts on this server are created by your organization."


@dataclass(frozen=True)
class Retention:
    enabled: bool = True
    default_lifetime: Duration = Duration(365 * DAY_MS)
    min_lifetime: Duration = Duration(1 * DAY_MS)
    max_lifetime: Duration = Duration(3 * 365 * DAY_MS)
    allow_shorten: bool = True  # may a room set a lifetime below the default?
    allow_lengthen: bool = True  # may a room set a lifetime above the default?
    purge_interval: Duration = Duration(12 * 60 * 60 * 1000)
    local_media_lifetime: Duration | None = None  # None: media kept until rooms purge it
    remote_media_lifetime: Duration = Duration(90 * DAY_MS)
    user_ips_max_age: Duration = Duration(28 * DAY_MS)
    redaction_retention_period: Duration = Duration(7 * DAY_MS)


@dataclass(frozen=True)
class Minors:
    enabled: bool = False
    require_guardian_consent: bool = True
    consent_required_message: str = (
        "This account is waiting for a parent or guardian's consent. Please ask your school."
    )


@dataclass(frozen=True)
class PushApp:
    """One mobile app build the gateway pushes for; ``app_id`` is the pusher's ``app_id``."""

    app_id: str  # exact or glob, e.g. com.acme.chat.android or com.acme.chat.*
    platform: Literal["android", "ios", "web"] = "android"
    fcm_project: str = ""
    service_account: str = ""  # path to the FCM service-account JSON, relative to the spec
    fcm_options: dict[str, object] = field(default_factory=dict)  # merged into every message
    max_in_flight: int = 512


@dataclass(frozen=True)
class Push:
    enabled: bool = True
    gateway_url: str = ""  # what pushers register; default: <public_baseurl>_matrix/push/v1/notify
    listen_host: str = "127.0.0.1"
    listen_port: int = 5000
    metrics_port: int = 0  # 0: no metrics listener
    fcm_base_url: str = "https://fcm.googleapis.com"
    # How the gateway talks to FCM: auto (HTTP/2 over https, the gateway's HTTP/1.1 pool over
    # plain http), http1 (the pool everywhere: ~6x less CPU per send), h2c (HTTP/2, plain http).
    fcm_http: Literal["auto", "http1", "h2c"] = "auto"
    redis_url: str = ""  # dedup cache in Redis when set (several gateway instances)
    event_id_only: bool = True  # the format Synapse's pusher sends; no room or sender names
    apps: tuple[PushApp, ...] = ()


@dataclass(frozen=True)
class Federation:
    enabled: bool = False
    allow: tuple[str, ...] = ()  # server names this org may federate with; empty: none
    port: int = 8448


@dataclass(frozen=True)
class Analytics:
    """Off unless the org turns it on; then only to the org's own endpoints."""

    enabled: bool = False
    posthog_project_api_key: str = ""
    posthog_api_host: str = ""
    rageshake_url: str = ""  # bug-report endpoint run by the org


@dataclass(frozen=True)
class Storage:
    backend: Literal["local", "s3"] = "local"
    media_path: str = ""  # default: <bundle>/data/media_store
    max_upload_size: Size = Size(50 * 1024 * 1024)
    s3_bucket: str = ""
    s3_region: str = ""
    s3_endpoint_url: str = ""
    s3_prefix: str = ""


@dataclass(frozen=True)
class License:
    path: str = ""  # signed license file, relative to the spec; default: <slug>.license
    vendor_public_key: str = ""  # default: the Chat500MG vendor key shipped with the product


@dataclass(frozen=True)
class Email:
    enabled: bool = False
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_user: str = ""
    smtp_password_file: str = ""
    require_transport_security: bool = True
    notif_from: str = ""  # default: "<brand> <noreply@server_name>"


@dataclass(frozen=True)
class Calls:
    enabled: bool = False
    turn_host: str = ""  # default: server_name
    turn_port: int = 3478
    turn_tls_port: int = 5349
    user_lifetime: Duration = Duration(24 * 60 * 60 * 1000)


@dataclass(frozen=True)
class Scale:
    workers: int = 0  # generic client workers; >0 needs PostgreSQL and Redis
    redis_host: str = "127.0.0.1"
    redis_port: int = 6379


@dataclass(frozen=True)
class Spec:
    org: Org
    server: Server
    database: Database = field(default_factory=Database)
    branding: Branding = field(default_factory=Branding)
    registration: Registration = field(default_factory=Registration)
    retention: Retention = field(default_factory=Retention)
    minors: Minors = field(default_factory=Minors)
    push: Push = field(default_factory=Push)
    federation: Federation = field(default_factory=Federation)
    analytics: Analytics = field(default_factory=Analytics)
    storage: Storage = field(default_factory=Storage)
    license: License = field(default_factory=License)
    email: Email = field(default_factory=Email)
    calls: Calls = field(default_factory=Calls)
    scale: Scale = field(default_factory=Scale)
    # Where the spec file lives: relative paths in the spec resolve against it. Not a YAML key.
    base_dir: Path = field(default=Path("."), compare=False)

    def resolve(self, relative: str) -> Path:
        """A path from the spec, made absolute against the spec file's directory."""
        path = Path(relative).expanduser()
        return path if path.is_absolute() else (self.base_dir / path).resolve()

    @property
    def public_baseurl(self) -> str:
        url = self.server.public_baseurl or f"https://{self.server.server_name}/"
        return url if url.endswith("/") else url + "/"

    @property
    def brand(self) -> str:
        return self.branding.brand or self.org.display_name

    @property
    def push_gateway_url(self) -> str:
        return self.push.gateway_url or f"{self.public_baseurl}_matrix/push/v1/notify"

    @property
    def license_path(self) -> Path:
        return self.resolve(self.license.path or f"{self.org.slug}.license")
