"""Checks on values coming in: each failure is an INVALID_ARGUMENT that names the field."""

import math
import re
from collections.abc import Mapping
from typing import Any

from mlcatalog.catalog.errors import invalid

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# Semantic Versioning 2.0.0, https://semver.org (the recommended regular expression).
SEMVER = re.compile(
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?"
)
SHA256 = re.compile(r"[0-9a-f]{64}")
COMMIT = re.compile(r"[0-9a-f]{7,64}")

MAX_NAME = 200
MAX_LINE = 2000
MAX_TEXT = 100_000
MAX_TAGS = 100
MAX_JSON_CHARS = 1_000_000


def name(value: str, field: str, *, max_length: int = MAX_NAME) -> str:
    if not value:
        raise invalid(f"{field} must not be empty")
    if len(value) > max_length:
        raise invalid(f"{field} is longer than {max_length} characters")
    if not NAME.fullmatch(value):
        raise invalid(
            f"{field} {value!r} may hold only letters, digits, '.', '_' and '-',"
            " and must start with a letter or digit"
        )
    return value


def line(value: str | None, field: str, *, max_length: int = MAX_LINE) -> str | None:
    """A short single-line value (URI, owner, framework…); None stays None, blank is refused."""
    if value is None:
        return None
    if not value.strip():
        raise invalid(f"{field} must not be blank")
    if len(value) > max_length:
        raise invalid(f"{field} is longer than {max_length} characters")
    if "\n" in value or "\r" in value:
        raise invalid(f"{field} must be a single line")
    return value


def required_line(value: str, field: str, *, max_length: int = MAX_LINE) -> str:
    checked = line(value, field, max_length=max_length)
    if checked is None:
        raise invalid(f"{field} is required")
    return checked


def text(value: str | None, field: str, *, max_length: int = MAX_TEXT) -> str:
    if value is None:
        return ""
    if len(value) > max_length:
        raise invalid(f"{field} is longer than {max_length} characters")
    return value


def semver(value: str | None) -> str | None:
    if value is None:
        return None
    if len(value) > 100 or not SEMVER.fullmatch(value):
        raise invalid(
            f"version {value[:100]!r} is not a semantic version such as 1.4.0 or 2.0.0-rc.1"
        )
    return value


def sha256(value: str | None) -> str | None:
    if value is not None and not SHA256.fullmatch(value):
        raise invalid("artifact sha256 must be 64 lowercase hexadecimal characters")
    return value


def commit(value: str | None) -> str | None:
    if value is not None and not COMMIT.fullmatch(value):
        raise invalid("code commit must be 7 to 64 lowercase hexadecimal characters")
    return value


MAX_BIG = 2**63 - 1  # the largest value a BigInteger column holds


def non_negative(value: int | None, field: str) -> int | None:
    """A count or size, stored in a BigInteger column: 0 to 2**63 - 1."""
    if value is not None and value < 0:
        raise invalid(f"{field} must not be negative")
    if value is not None and value > MAX_BIG:
        raise invalid(f"{field} must be at most {MAX_BIG}")
    return value


def finite(value: float, field: str) -> float:
    if not math.isfinite(value):
        raise invalid(f"{field} must be a finite number, not {value}")
    return value


def json_object(value: Any, field: str) -> dict[str, Any]:
    """A JSON object of bounded size whose numbers are all finite."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise invalid(f"{field} must be a JSON object, not {type(value).__name__}")
    size = 0

    def walk(item: Any) -> None:
        nonlocal size
        size += 1
        if size > MAX_JSON_CHARS // 10:
            raise invalid(f"{field} is too large")
        if isinstance(item, float) and not math.isfinite(item):
            raise invalid(f"{field} holds {item}, which JSON cannot represent")
        if isinstance(item, str) and len(item) > MAX_TEXT:
            raise invalid(f"{field} holds a string longer than {MAX_TEXT} characters")
        if isinstance(item, Mapping):
            for key, child in item.items():
                if not isinstance(key, str):
                    raise invalid(f"{field} keys must be strings")
                walk(child)
        elif isinstance(item, list):
            for child in item:
                walk(child)

    walk(value)
    return dict(value)


def tags(values: Mapping[str, str]) -> dict[str, str]:
    if len(values) > MAX_TAGS:
        raise invalid(f"at most {MAX_TAGS} tags per entity")
    return {
        name(key, "tag key"): text(value, f"tag {key!r} value", max_length=1000)
        for key, value in values.items()
    }
