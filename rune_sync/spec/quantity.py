"""Kubernetes size quantities: parse, format, compare.

Syntax (Kubernetes ``resource.Quantity``)::

    quantity ::= ["+"] number suffix
    number   ::= digits | digits "." digits | digits "." | "." digits
    suffix   ::= "" | binarySI | decimalSI | ("e" | "E") signed-integer
    binarySI ::= Ki Mi Gi Ti Pi Ei          (powers of 1024)
    decimalSI::= m k K M G T P E            (powers of 1000; ``K`` as the seeds write it)

A bare number is bytes. Byte counts are whole: a fractional result is rounded up,
as Kubernetes does. Negative quantities are rejected. Pure functions, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction

_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"k": 1, "K": 1, "M": 2, "G": 3, "T": 4, "P": 5, "E": 6}
_MULTIPLIER: dict[str, Fraction] = {"": Fraction(1), "m": Fraction(1, 1000)}
_MULTIPLIER.update({s: Fraction(1024**e) for s, e in _BINARY.items()})
_MULTIPLIER.update({s: Fraction(1000**e) for s, e in _DECIMAL.items()})

_RE = re.compile(
    r"\+?(?P<num>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?:(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|m|k|K|M|G|T|P|E)|[eE](?P<exp>[+-]?[0-9]+))?"
)
# Guard against absurd exponents (10e999999999) that would hang big-integer math.
_MAX_EXPONENT = 30
_MAX_DIGITS = 40

PATTERN = r"^\+?([0-9]+(\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|K|M|G|T|P|E|[eE][+-]?[0-9]+)?$"
"""The same syntax as a JSON Schema ``pattern`` (used by ``schemas/``)."""


class QuantityError(ValueError):
    """The text is not a Kubernetes quantity."""


@dataclass(frozen=True, slots=True, order=True)
class Quantity:
    """A size in whole bytes; ``text`` is how the user wrote it (not compared)."""

    bytes: int
    text: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.bytes < 0:
            raise QuantityError("a quantity cannot be negative")

    def __str__(self) -> str:
        return self.text or format_bytes(self.bytes)

    @property
    def gib_ceil(self) -> int:
        """Whole GiB, rounded up (how block drivers provision)."""
        return -(-self.bytes // 1024**3)


def parse(value: str | int) -> Quantity:
    """Parse a quantity; an ``int`` (a bare YAML number) is bytes.

    Raises :class:`QuantityError` with a message that names the accepted forms.
    """
    if isinstance(value, bool):
        raise QuantityError(f"{value!r} is not a quantity")
    if isinstance(value, int):
        if value < 0:
            raise QuantityError(f"{value} is negative; sizes must be positive")
        return Quantity(value, str(value))
    text = value
    m = _RE.fullmatch(text)
    if m is None:
        raise QuantityError(
            f"{text!r} is not a Kubernetes quantity (write e.g. 10Gi, 500Mi, 1.5G or a byte count)"
        )
    num = m.group("num")
    suffix = m.group("suffix") or ""
    if num.isdigit() and m.group("exp") is None and suffix != "m" and len(num) <= _MAX_DIGITS:
        return Quantity(int(num) * int(_MULTIPLIER[suffix]), text)  # the common case, exact
    if len(num) > _MAX_DIGITS:
        raise QuantityError(f"{text!r} has too many digits")
    amount = Fraction(num if not num.endswith(".") else num[:-1] or "0")
    exp = m.group("exp")
    if exp is not None:
        e = int(exp)
        if abs(e) > _MAX_EXPONENT:
            raise QuantityError(f"{text!r}: exponent out of range")
        amount *= Fraction(10) ** e
    else:
        amount *= _MULTIPLIER[suffix]
    whole = -(-amount.numerator // amount.denominator)  # round up, as Kubernetes does
    return Quantity(whole, text)


def format_bytes(n: int) -> str:
    """The shortest exact form: the largest binary suffix, else decimal, else bytes."""
    if n == 0:
        return "0"
    for suffix, e in sorted(_BINARY.items(), key=lambda kv: -kv[1]):
        unit = 1024**e
        if n % unit == 0:
            return f"{n // unit}{suffix}"
    for suffix in ("E", "P", "T", "G", "M", "k"):
        unit = 1000 ** _DECIMAL[suffix]
        if n % unit == 0:
            return f"{n // unit}{suffix}"
    return str(n)
