"""The field rules of core/fields.py applied to whole records, for CSV import and staff writes."""

import enum
import hashlib
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, TypeVar

# Callers import the list from here as well as from core/fields.py, where it is declared.
from trends_gql.core.fields import COUNT_MAX, FIELDS, TREND_FIELDS, Choice, Count, Rule, Text

E = TypeVar("E", bound=enum.Enum)
_INTEGER = re.compile(r"\+?\d+(?:\.0*)?")


class FieldError(NamedTuple):
    field: str
    message: str


class InvalidTrend(ValueError):
    """A trend record broke one or more field rules."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


def _text(required: bool, max_length: int | None = None) -> Callable[[Any], str | None]:
    def clean(value: Any) -> str | None:
        if value is None:
            text = ""
        elif isinstance(value, str):
            text = value.strip()
        else:
            raise ValueError(f"expected text, got {type(value).__name__}")
        if not text:
            if required:
                raise ValueError("is required")
            return None
        if "\x00" in text:
            raise ValueError("contains a NUL character")
        if max_length is not None and len(text) > max_length:
            raise ValueError(f"is too long ({len(text)} characters, at most {max_length})")
        return text

    return clean


def _count(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("expected a whole number")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if text.isascii() and text.isdigit():  # the usual case, without the pattern
            number = int(text)
        elif _INTEGER.fullmatch(text):
            number = int(text.split(".", 1)[0])
        elif text.startswith("-") and _INTEGER.fullmatch(text[1:]):
            raise ValueError(f"must not be negative (got {text})")
        else:
            raise ValueError(f"is not a whole number: {text!r}")
    else:
        raise ValueError(f"expected a whole number, got {type(value).__name__}")
    if number < 0:
        raise ValueError(f"must not be negative (got {number})")
    if number > COUNT_MAX:
        raise ValueError(f"is too large (at most {COUNT_MAX})")
    return number


def _choice(
    cls: type[E], default: E | None, words: Mapping[str, E] | None = None
) -> Callable[[Any], E | None]:
    lookup: dict[str, E] = {m.value.casefold(): m for m in cls}
    lookup.update({m.name.casefold(): m for m in cls})
    lookup.update(words or {})
    allowed = ", ".join(m.value for m in cls)

    def clean(value: Any) -> E | None:
        if value is None or isinstance(value, cls):
            return value if value is not None else default
        if not isinstance(value, str):
            raise ValueError(f"expected one of {allowed}")
        text = value.strip()
        if not text:
            return default
        try:
            return lookup[text.casefold()]
        except KeyError:
            raise ValueError(f"unknown value {text!r} (expected one of {allowed})") from None

    return clean


def _cleaner(rule: Rule) -> Callable[[Any], Any]:
    """The function that normalises a value under `rule` (ValueError when the value breaks it)."""
    match rule:
        case Text():
            return _text(rule.required, rule.max_length)
        case Count():
            return _count
        case Choice():
            return _choice(rule.members, rule.default, rule.words)


CLEANERS: dict[str, Callable[[Any], Any]] = {f.name: _cleaner(f.rule) for f in TREND_FIELDS}


def clean_trend(raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[FieldError]]:
    """Normalise the fields of `raw` (missing ones count as empty); return values and errors."""
    values: dict[str, Any] = {}
    errors: list[FieldError] = []
    for field, clean in CLEANERS.items():
        try:
            values[field] = clean(raw.get(field))
        except ValueError as exc:
            errors.append(FieldError(field, str(exc)))
    return values, errors


def validate_trend(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Normalised values of `raw`, or InvalidTrend naming every bad field."""
    values, errors = clean_trend(raw)
    if errors:
        raise InvalidTrend(errors)
    return values


def fingerprint(values: Mapping[str, Any]) -> bytes:
    """SHA-256 of the normalised data fields: equal records, equal fingerprints."""
    return fingerprint_of(field_values(values))


field_values = operator.itemgetter(*FIELDS)  # the data fields of a record, in order


def fingerprint_of(ordered: tuple[Any, ...]) -> bytes:
    """The fingerprint of the normalised data fields, given in FIELDS order."""
    # NUL never occurs inside a value (rejected above), so the joined form is unambiguous;
    # enum members are StrEnums, so str() gives their value.
    joined = "\x00".join(["-" if v is None else f"={v}" for v in ordered])
    return hashlib.sha256(joined.encode()).digest()
