"""Single-value checks for spec fields: pure, each returns a problem sentence or None.

Kept apart from the loader because other commands check the same things (``chat500 users``
checks a localpart, ``chat500 init`` a server name) and because they are the easiest part of
the spec rules to test on their own.
"""

from __future__ import annotations

import ipaddress
import re
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import urlsplit


def show(value: object) -> str:
    """A value as it appears in a message: repr, cut short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."



_SLUG = re.compile(r"[a-z][a-z0-9-]{0,30}[a-z0-9]")
_DNS_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", re.IGNORECASE)
_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
_PG_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_PG_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.@-]{0,62}")
_LOCALPART = re.compile(r"[a-z0-9._=/+-]+")
_JAVA_PACKAGE = re.compile(r"[a-zA-Z][a-zA-Z0-9_]*(?:\.[a-zA-Z][a-zA-Z0-9_]*)+")
_BUNDLE_ID = re.compile(r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_PUSH_APP_ID = re.compile(r"[A-Za-z0-9._*-]{1,64}")
_FCM_PROJECT = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]")
_S3_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_S3_REGION = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
_EMAIL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@([A-Za-z0-9.-]+)")
_IMAGE_SUFFIXES = (".png", ".svg", ".jpg", ".jpeg", ".webp", ".gif")


def slug_problem(value: str) -> str | None:
    if _SLUG.fullmatch(value) and "--" not in value:
        return None
    return (
        "must be 2-32 lowercase letters, digits or '-', starting with a letter and not ending "
        f"with '-' (got {show(value)})"
    )


def _text_problem(value: str, limit: int) -> str | None:
    if value.strip() == "":
        return "must not be empty"
    if any(ord(ch) < 32 for ch in value):
        return "must be one line of text"
    if len(value) > limit:
        return f"must be at most {limit} characters (got {len(value)})"
    return None


def display_name_problem(value: str) -> str | None:
    return _text_problem(value, 100)


def message_problem(value: str) -> str | None:
    if value.strip() == "":
        return "must not be empty"
    return None if len(value) <= 1000 else f"must be at most 1000 characters (got {len(value)})"


def dns_name_problem(value: str) -> str | None:
    """A DNS host name: dot-separated labels of letters, digits and inner hyphens."""
    if value == "":
        return "must not be empty"
    if len(value) > 253:
        return "is longer than 253 characters"
    if value != value.lower():
        return f"must be lowercase (got {show(value)})"
    labels = value.split(".")
    if not all(_DNS_LABEL.fullmatch(label) for label in labels):
        return f"is not a valid host name (got {show(value)})"
    if labels[-1].isdigit():
        return f"is not a valid host name or IPv4 address (got {show(value)})"
    return None


def server_name_problem(value: str) -> str | None:
    """A Matrix server name: host name, IPv4 or [IPv6] literal, optional :port."""
    hint = f"is not a valid Matrix server name (got {show(value)}); expected host[:port]"
    if value == "":
        return "must not be empty"
    if any(ch.isspace() for ch in value) or "/" in value or "@" in value:
        return hint + " with no scheme, path or user"
    port: str | None = None
    if value.startswith("["):
        host, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return hint
        if rest:
            port = rest[1:]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return f"has an invalid IPv6 literal (got {show(value)})"
    else:
        if value.count(":") > 1:
            return f"{hint}; write IPv6 literals in brackets, e.g. [::1]:8448"
        host, colon, port_text = value.partition(":")
        if colon:
            port = port_text
        if all(part.isdigit() for part in host.split(".")):
            try:
                ipaddress.IPv4Address(host)
            except ValueError:
                return f"has an invalid IPv4 address (got {show(value)})"
        else:
            problem = dns_name_problem(host)
            if problem:
                return f"{problem}; a Matrix server name is host[:port]"
    if port is not None and not (port.isdigit() and len(port) <= 5 and 1 <= int(port) <= 65535):
        return f"has an invalid port (got {show(value)}); ports are 1-65535"
    return None


def hostname_or_ip_problem(value: str) -> str | None:
    try:
        ipaddress.ip_address(value)
        return None
    except ValueError:
        return dns_name_problem(value)


def ip_address_problem(value: str) -> str | None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return f"must be an IP address such as 127.0.0.1 or :: (got {show(value)})"
    return None


def http_url_problem(value: str) -> str | None:
    if any(ch.isspace() for ch in value):
        return f"must be an http(s) URL without spaces (got {show(value)})"
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"must be an http:// or https:// URL (got {show(value)})"
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return f"has an invalid port (got {show(value)})"
    return None


def base_url_problem(value: str) -> str | None:
    problem = http_url_problem(value)
    if problem:
        return problem
    parts = urlsplit(value)
    if parts.query or parts.fragment:
        return f"must not have a query or fragment (got {show(value)})"
    return None


def redis_url_problem(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in ("redis", "rediss", "unix") or not (parts.hostname or parts.path):
        return f"must be a redis://, rediss:// or unix:// URL (got {show(value)})"
    return None


def email_address_problem(value: str) -> str | None:
    match = _EMAIL.fullmatch(value)
    if match is None or dns_name_problem(match.group(1).lower()):
        return f"must be an email address (got {show(value)})"
    return None


def mail_from_problem(value: str) -> str | None:
    """``Acme Chat <noreply@acme.test>`` or a bare address."""
    name, address = parseaddr(value)
    if not address or email_address_problem(address):
        return f"must be an address or 'Name <address>' (got {show(value)})"
    return None


def contact_problem(value: str) -> str | None:
    if value.startswith("mailto:"):
        bad = email_address_problem(value.removeprefix("mailto:")) is not None
    else:
        bad = http_url_problem(value) is not None
    return f"must be mailto:<address> or an http(s) URL (got {show(value)})" if bad else None


def email_domain_problem(value: str) -> str | None:
    if "@" in value:
        return f"must be a domain without '@' (got {show(value)})"
    return dns_name_problem(value)


def colour_problem(value: str) -> str | None:
    if _COLOUR.fullmatch(value):
        return None
    return f"must be a #rrggbb colour (got {show(value)})"


def db_host_problem(value: str) -> str | None:
    if value.startswith("/"):
        return None  # a Unix socket directory
    return hostname_or_ip_problem(value)


def db_identifier_problem(value: str) -> str | None:
    if _PG_IDENTIFIER.fullmatch(value):
        return None
    return (
        "must be 1-63 lowercase letters, digits or '_', not starting with a digit "
        f"(got {show(value)})"
    )


def db_user_problem(value: str) -> str | None:
    if _PG_USER.fullmatch(value):
        return None
    return f"must be a PostgreSQL role name without spaces or quotes (got {show(value)})"


def localpart_problem(value: str) -> str | None:
    if _LOCALPART.fullmatch(value):
        return None
    return f"must be a Matrix user name: lowercase a-z, 0-9 and ._=/+- (got {show(value)})"


def android_package_problem(value: str) -> str | None:
    if _JAVA_PACKAGE.fullmatch(value):
        return None
    return f"must be an Android package name such as com.acme.chat (got {show(value)})"


def ios_bundle_id_problem(value: str) -> str | None:
    if _BUNDLE_ID.fullmatch(value):
        return None
    return f"must be an iOS bundle id such as com.acme.chat (got {show(value)})"


def push_app_id_problem(value: str) -> str | None:
    if _PUSH_APP_ID.fullmatch(value):
        return None
    return (
        "must be 1-64 characters of letters, digits and . _ - * (a pusher app_id such as "
        f"com.acme.chat.android; got {show(value)})"
    )


def fcm_project_problem(value: str) -> str | None:
    if _FCM_PROJECT.fullmatch(value):
        return None
    return (
        f"must be a Firebase project id: 6-30 lowercase letters, digits or '-' (got {show(value)})"
    )


def s3_bucket_problem(value: str) -> str | None:
    if _S3_BUCKET.fullmatch(value) and ".." not in value:
        try:
            ipaddress.IPv4Address(value)
        except ValueError:
            return None
    return (
        "must be an S3 bucket name: 3-63 lowercase letters, digits, '.' or '-' "
        f"(got {show(value)})"
    )


def s3_region_problem(value: str) -> str | None:
    if _S3_REGION.fullmatch(value):
        return None
    return f"must be a region name such as eu-west-1 (got {show(value)})"


def s3_prefix_problem(value: str) -> str | None:
    if value.startswith("/") or any(ch.isspace() for ch in value):
        return f"must be a key prefix without a leading '/' or spaces (got {show(value)})"
    return None


def image_path_problem(value: str) -> str | None:
    if Path(value).suffix.lower() in _IMAGE_SUFFIXES:
        return None
    return f"must be an image file ({', '.join(_IMAGE_SUFFIXES)}), got {show(value)}"
