"""Who may register themselves, decided without Synapse so it can be tested exhaustively.

Self-registration only: accounts an admin creates (admin API, CLI) are the org's own decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Mode = Literal["admin_only", "token", "email_domain"]
MODES: tuple[str, ...] = ("admin_only", "token", "email_domain")

# Characters people use to make one name look like another: separators vanish, digits and
# symbols read as the letters they imitate.
_SEPARATORS = str.maketrans("", "", "._-=/+")
_LOOKALIKES = str.maketrans(
    {
        "0": "o",
        "1": "l",
        "!": "l",
        "|": "l",
        "i": "l",
        "3": "e",
        "4": "a",
        "@": "a",
        "5": "s",
        "$": "s",
        "7": "t",
        "8": "b",
        "9": "g",
        "2": "z",
        "6": "g",
    }
)


def skeleton(name: str) -> str:
    """The shape of a name as a reader sees it: ``Adm1n``, ``a.d.m.i.n`` and ``admin`` agree."""
    squeezed = name.lower().translate(_SEPARATORS).translate(_LOOKALIKES)
    out: list[str] = []
    for ch in squeezed:
        if not out or out[-1] != ch:
            out.append(ch)
    return "".join(out)


def is_reserved(localpart: str, reserved: tuple[str, ...]) -> bool:
    """True for a reserved name, a look-alike of one, or one with a number tacked on."""
    plain = localpart.lower().translate(_SEPARATORS)
    candidates = {skeleton(localpart), skeleton(plain.rstrip("0123456789"))}
    return any(skeleton(name) in candidates for name in reserved if name)


def email_domain(address: str) -> str:
    return address.rsplit("@", 1)[-1].strip().lower() if "@" in address else ""


def domain_allowed(address: str, allowed: tuple[str, ...]) -> bool:
    """Exact domain match (case-insensitive); subdomains must be listed themselves."""
    domain = email_domain(address)
    return bool(domain) and domain in {d.lower() for d in allowed}


def is_self_registration(request_info: object, auth_provider_id: str | None) -> bool:
    """Synapse passes the client's user agents and IPs (or the SSO provider) only when someone
    registers themselves; admin-API, shared-secret and module registrations pass neither."""
    return bool(request_info) or auth_provider_id is not None


@dataclass(frozen=True)
class Refusal:
    reason: str  # for logs: never the email address itself


def check_self_registration(
    mode: Mode,
    localpart: str | None,
    email: str | None,
    reserved: tuple[str, ...],
    allowed_domains: tuple[str, ...],
) -> Refusal | None:
    """None when a self-registration may proceed, else why not."""
    if mode == "admin_only":
        return Refusal("self-registration is disabled")
    if localpart and is_reserved(localpart, reserved):
        return Refusal("reserved or look-alike name")
    if mode == "email_domain":
        if not email:
            return Refusal("no verified email")
        if not domain_allowed(email, allowed_domains):
            return Refusal("email domain not allowed")
    return None


def email_domain_pattern(domains: tuple[str, ...]) -> str:
    """Synapse ``allowed_local_3pids`` regex accepting exactly these domains."""
    import re

    alternatives = "|".join(re.escape(d.lower()) for d in domains)
    return rf"^[^@\s]+@(?i:{alternatives})$"
