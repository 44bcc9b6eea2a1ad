"""Seat holds for account creations in flight: pure, the clock as an argument."""

from __future__ import annotations

from synapse_modules.licensing.reservations import SeatReservations


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_hold_lasts_until_the_account_exists() -> None:
    seats = SeatReservations(ttl_s=10, clock=Clock())
    seats.hold("alice")
    seats.hold("bob")
    assert seats.held() == 2
    seats.account_created("alice")
    assert seats.held() == 1
    seats.account_created("bob")
    assert seats.held() == 0


def test_holding_the_same_name_twice_renews_instead_of_doubling() -> None:
    clock = Clock()
    seats = SeatReservations(ttl_s=10, clock=clock)
    seats.hold("alice")
    clock.now += 8
    seats.hold("alice")
    assert seats.held() == 1
    clock.now += 8  # 16 s after the first hold, 8 after the renewal
    assert seats.held() == 1


def test_a_creation_that_failed_after_the_check_frees_its_seat_in_time() -> None:
    clock = Clock()
    seats = SeatReservations(ttl_s=10, clock=clock)
    seats.hold("taken-name")
    clock.now += 9.9
    assert seats.held() == 1
    clock.now += 0.2
    assert seats.held() == 0


def test_generated_names_release_the_oldest_anonymous_hold() -> None:
    seats = SeatReservations(ttl_s=10, clock=Clock())
    seats.hold(None)
    seats.hold("carol")
    seats.hold(None)
    seats.account_created("4711")  # a name Synapse generated
    assert seats.held() == 2
    seats.account_created("carol")
    seats.account_created("4712")
    assert seats.held() == 0
    seats.account_created("bridge_1")  # an account nobody held a seat for: nothing to drop
    assert seats.held() == 0
