"""Seats promised to account creations that Synapse has not written to its database yet.

Synapse asks the license module about a new account (``check_registration_for_spam``) some
milliseconds before it inserts the row, with awaits in between. Two creations racing for the
last seat would both see it free. So a creation that passes holds its seat here, the count
includes held seats, and the hold ends when the account exists (``on_user_registration``), or
after ``ttl_s`` for a creation that failed after our check (a name already taken, say).

Per process: registration is served by the main process in every layout we render.
"""

from __future__ import annotations

import time
from collections.abc import Callable

ANONYMOUS = ""  # a creation without a chosen localpart (Synapse generates one)


class SeatReservations:
    def __init__(self, ttl_s: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._held: list[tuple[str, float]] = []  # (localpart or ANONYMOUS, expires), oldest first

    def held(self) -> int:
        now = self._clock()
        self._held = [entry for entry in self._held if entry[1] > now]
        return len(self._held)

    def hold(self, key: str | None) -> None:
        """Hold a seat for ``key``; holding the same localpart again renews, never doubles."""
        key = key or ANONYMOUS
        if key != ANONYMOUS:
            self.release(key)
        self._held.append((key, self._clock() + self._ttl_s))

    def release(self, key: str | None) -> None:
        key = key or ANONYMOUS
        for index, (held_key, _expires) in enumerate(self._held):
            if held_key == key:
                del self._held[index]
                return

    def account_created(self, localpart: str) -> None:
        """The account now counts by itself: drop its hold (or, if Synapse chose the name,
        the oldest anonymous hold)."""
        if any(held_key == localpart for held_key, _ in self._held):
            self.release(localpart)
        else:
            self.release(ANONYMOUS)
