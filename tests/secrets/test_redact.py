"""Cleaning resolved values out of text and exceptions."""

from __future__ import annotations

import traceback

from rune_sync.errors import DriverError, DriverTransientError
from rune_sync.secrets.redact import Redactor

CANARY = "CANARY-r3dact-5ecret"


def redactor(*values: str) -> Redactor:
    r = Redactor()
    for value in values:
        r.remember(value)
    return r


def test_scrub_masks_every_occurrence_longest_value_first():
    r = redactor("abc", "abcdef")
    assert r.scrub("x abcdef y abc z") == "x *** y *** z"


def test_an_empty_value_hides_nothing():
    assert redactor("").scrub("text") == "text"


def test_a_driver_error_is_cleaned_in_place_keeping_its_type_and_fields():
    exc = DriverTransientError(
        f"timeout talking with token {CANARY}",
        driver="do-volume",
        operation="provision",
        address="volume/prod/a",
        retry_after=3.0,
    )
    assert redactor(CANARY).clean(exc) is None
    assert str(exc) == "timeout talking with token ***"
    assert (exc.driver, exc.operation, exc.address, exc.retry_after) == (
        "do-volume",
        "provision",
        "volume/prod/a",
        3.0,
    )


def test_causes_notes_and_os_error_fields_are_cleaned_too():
    try:
        try:
            raise FileNotFoundError(2, "No such file", f"/srv/{CANARY}")
        except OSError as inner:
            outer = KeyError(CANARY)
            outer.add_note(f"while reading {CANARY}")
            raise outer from inner
    except KeyError as exc:
        caught = exc
    assert redactor(CANARY).clean(caught) is None
    shown = "".join(traceback.format_exception(caught))
    assert CANARY not in shown
    assert "/srv/***" in shown


class Chatty(Exception):
    def __init__(self, token: str) -> None:
        super().__init__("chatty")
        self.token = token

    def __str__(self) -> str:
        return f"chatty: {self.token}"


def test_an_exception_that_still_shows_a_value_gets_a_stand_in():
    exc = Chatty(CANARY)
    stand_in = redactor(CANARY).clean(exc)
    assert isinstance(stand_in, DriverError)
    assert str(stand_in) == (
        "Chatty raised by the driver; its text held a secret value and is withheld"
    )


def test_nothing_remembered_means_nothing_to_clean():
    exc = Chatty("not secret")
    assert Redactor().clean(exc) is None
    assert str(exc) == "chatty: not secret"
