"""Idempotency keys: a request retried with its key returns what the first one returned."""

import dataclasses
import hashlib
import json
from datetime import timedelta
from typing import Any

from sqlalchemy import delete

from mlcatalog.catalog import validation
from mlcatalog.catalog.errors import CatalogError, ErrorCode
from mlcatalog.catalog.steps import flush
from mlcatalog.store.database import UnitOfWork
from mlcatalog.store.rows import IdempotencyKeyRow, utcnow

KEY_LIFETIME = timedelta(hours=24)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)


def fingerprint(request: Any) -> str:
    """What a key stands for: the SHA-256 of the request's arguments."""
    text = json.dumps(request, sort_keys=True, default=_plain, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


async def replay(uow: UnitOfWork, *, key: str, request_sha256: str) -> list[int] | None:
    """The ids the first request with ``key`` returned, or None if the key is new (or expired).
    The same key with another request is CONFLICT."""
    validation.required_line(key, "idempotency key", max_length=200)
    row = await uow.session.get(IdempotencyKeyRow, (uow.actor, key))
    if row is None:
        return None
    if row.expires_at <= utcnow():
        await uow.session.delete(row)
        await uow.session.flush()
        return None
    if row.request_sha256 != request_sha256:
        raise CatalogError(
            ErrorCode.CONFLICT,
            f"idempotency key {key[:50]!r} was used for another request: use a new key",
        )
    return list(row.result_ids)


async def remember(uow: UnitOfWork, *, key: str, request_sha256: str, ids: list[int]) -> None:
    """Keep what the request with ``key`` returned, committed with its writes; the actor's
    expired keys go on the way, so the table holds a day of each actor's keys at most."""
    await uow.session.execute(
        delete(IdempotencyKeyRow).where(
            IdempotencyKeyRow.actor == uow.actor, IdempotencyKeyRow.expires_at <= utcnow()
        )
    )
    uow.session.add(
        IdempotencyKeyRow(
            actor=uow.actor,
            key=key,
            request_sha256=request_sha256,
            result_ids=ids,
            expires_at=utcnow() + KEY_LIFETIME,
        )
    )
    # Two requests racing with one key: the second finds the first's row at flush.
    await flush(uow, duplicate=f"idempotency key {key[:50]!r} is in use by another request")
