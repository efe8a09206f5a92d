"""Webhook delivery with the journal as outbox: a cursor per hook, entries POSTed in journal
order, signed, retried with backoff, a hook disabled after a run of failures.

At least once: the cursor moves in the transaction that records a 2xx, so a crash before it
sends the entry again. In order: a hook waits on its oldest undelivered entry. One worker per
hook at a time: a lease on the hook's row (as the indexer's on its checkpoint), so several
processes may run workers on PostgreSQL; on SQLite one process serves.
"""

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, select, update

from mlcatalog.events.outbound import Attempt, Sender
from mlcatalog.settings import WebhookSettings
from mlcatalog.store import journal
from mlcatalog.store.database import Database, Origin
from mlcatalog.store.entries import record
from mlcatalog.store.journal import Action, EntityType, WebhookDisabled
from mlcatalog.store.rows import (
    JournalHeadRow,
    JournalRow,
    ModelVersionRow,
    ProjectRow,
    WebhookDeliveryRow,
    WebhookRow,
    utcnow,
)

SIGNATURE_HEADER = "X-Mlcatalog-Signature"
PING = "webhook.ping"
BATCH = 100
log = logging.getLogger("mlcatalog.webhooks")


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value: ``t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, *, tolerance: float = 300) -> bool:
    """A receiver's check (for tests and examples): a good signature, made recently."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    fresh = abs(time.time() - timestamp) <= tolerance
    return fresh and hmac.compare_digest(expected, fields.get("v1", ""))


def event_body(entry: JournalRow, project: str, *, include_changes: bool) -> bytes:
    """What a receiver gets for one entry; ``changes`` (before/after, which may hold sensitive
    values) only for hooks made to include them."""
    event: dict[str, Any] = {
        "id": entry.seq,
        "action": entry.action,
        "entity": {"type": entry.entity_type, "id": entry.entity_id},
        "project": project,
        "at": entry.at.isoformat(),
        "actor": entry.actor,
    }
    if include_changes:
        event["changes"] = journal.changes(entry)
    return json.dumps(event, separators=(",", ":"), sort_keys=True).encode()


def headers(secret: str, event_id: int | None, action: str, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Mlcatalog-Event": action,
        "X-Mlcatalog-Delivery": str(event_id or 0),
        SIGNATURE_HEADER: sign(secret, int(time.time()), body),
    }


def backoff(failures: int, settings: WebhookSettings) -> float:
    """Seconds before the next try: doubling from the base up to the cap, with jitter (half
    fixed, half random) so hooks that failed together do not retry together."""
    cap: float = min(
        settings.max_backoff_seconds, settings.backoff_seconds * 2.0 ** min(failures - 1, 30)
    )
    return cap / 2 + random.uniform(0, cap / 2)


@dataclass(frozen=True)
class Claimed:
    """A hook as the worker holding its lease read it."""

    id: int
    project_id: int
    project: str
    url: str
    secret: str
    actions: list[str]
    stages: list[str]
    model_ids: list[int]
    include_changes: bool
    delivered_seq: int
    failures: int


async def _model_ids(database: Database, entries: Sequence[JournalRow]) -> dict[int, int]:
    """The model each version entry is about (by its row, or the delete entry's before)."""
    versions = {e.entity_id for e in entries if e.entity_type == EntityType.MODEL_VERSION}
    if not versions:
        return {}
    async with database.read() as session:
        rows = await session.execute(
            select(ModelVersionRow.id, ModelVersionRow.model_id).where(
                ModelVersionRow.id.in_(versions)
            )
        )
        found = {version_id: model_id for version_id, model_id in rows}
    for entry in entries:
        if entry.action == Action.MODEL_VERSION_DELETED:
            found[entry.entity_id] = journal.before(entry, journal.ModelVersionDeleted)["model_id"]
    return found


def matches(hook: Claimed, entry: JournalRow, models: dict[int, int]) -> bool:
    """The filter past the SQL (project and actions): stages bound stage moves, models bound
    everything to entries about those models and their versions."""
    if hook.stages and entry.action == Action.MODEL_VERSION_STAGE_CHANGED:
        stage = journal.after(entry, journal.StageEntered)["stage"]
        if stage not in hook.stages:
            return False
    if hook.model_ids:
        if entry.entity_type == EntityType.MODEL:
            return entry.entity_id in hook.model_ids
        if entry.entity_type == EntityType.MODEL_VERSION:
            return models.get(entry.entity_id) in hook.model_ids
        return False
    return True


class WebhookWorker:
    def __init__(
        self, database: Database, settings: WebhookSettings, sender: Sender | None = None
    ) -> None:
        self.database = database
        self.settings = settings
        self.sender = sender or Sender(settings)
        self.owner = uuid.uuid4().hex
        self.origin = Origin(actor="webhooks", client_address=f"worker:{self.owner[:12]}")
        # The lease outlives a whole attempt with room to spare; each recorded attempt renews it.
        self.lease = timedelta(seconds=max(60.0, 3 * settings.timeout_seconds))
        self.limit = asyncio.Semaphore(settings.concurrency)

    async def close(self) -> None:
        await self.sender.close()

    async def due(self) -> list[int]:
        """Enabled hooks behind the journal's head, not waiting for a retry, not leased."""
        now = utcnow()
        async with self.database.read() as session:
            head = await session.scalar(select(JournalHeadRow.seq)) or 0
            ids = await session.scalars(
                select(WebhookRow.id)
                .where(
                    WebhookRow.enabled,
                    WebhookRow.delivered_seq < head,
                    or_(WebhookRow.retry_at.is_(None), WebhookRow.retry_at <= now),
                    or_(WebhookRow.owner.is_(None), WebhookRow.lease_until < now),
                )
                .order_by(WebhookRow.id)
            )
            return list(ids)

    async def run_once(self) -> int:
        """Serve every due hook (several at once); returns the attempts made."""
        hooks = await self.due()
        done = await asyncio.gather(*(self._bounded(hook_id) for hook_id in hooks))
        return sum(done)

    async def _bounded(self, hook_id: int) -> int:
        async with self.limit:
            try:
                return await self.serve(hook_id)
            except Exception:  # one hook's fault (a lost database) must not stop the others
                log.exception("webhook %s: delivery failed, retrying", hook_id)
                return 0

    async def claim(self, hook_id: int) -> Claimed | None:
        now = utcnow()
        async with self.database.unit_of_work(self.origin) as uow:
            taken = await uow.session.execute(
                update(WebhookRow)
                .where(
                    WebhookRow.id == hook_id,
                    WebhookRow.enabled,
                    or_(WebhookRow.retry_at.is_(None), WebhookRow.retry_at <= now),
                    # Not even this worker's own lease: a hook is served once at a time.
                    or_(WebhookRow.owner.is_(None), WebhookRow.lease_until < now),
                )
                .values(owner=self.owner, lease_until=now + self.lease)
                .returning(WebhookRow)
            )
            hook = taken.scalar()
            if hook is None:
                return None
            project = await uow.session.scalar(
                select(ProjectRow.name).where(ProjectRow.id == hook.project_id)
            )
            return Claimed(
                id=hook.id,
                project_id=hook.project_id,
                project=project or "",
                url=hook.url,
                secret=hook.secret,
                actions=list(hook.actions),
                stages=list(hook.stages),
                model_ids=list(hook.model_ids),
                include_changes=hook.include_changes,
                delivered_seq=hook.delivered_seq,
                failures=hook.failures,
            )

    async def serve(self, hook_id: int) -> int:
        """Deliver one hook's next entries in order until one fails; returns the attempts."""
        hook = await self.claim(hook_id)
        if hook is None:
            return 0
        attempts = 0
        try:
            async with self.database.read() as session:
                # The head first: every entry up to it has committed (the head moves in the
                # transaction that appends), so the cursor may pass it once the batch is done.
                head = await session.scalar(select(JournalHeadRow.seq)) or 0
                entries = list(
                    await session.scalars(
                        select(JournalRow)
                        .where(
                            JournalRow.seq > hook.delivered_seq,
                            JournalRow.seq <= head,
                            JournalRow.project_id == hook.project_id,
                            JournalRow.action.in_(hook.actions),
                        )
                        .order_by(JournalRow.seq)
                        .limit(BATCH)
                    )
                )
            models = await _model_ids(self.database, entries) if hook.model_ids else {}
            failures = hook.failures
            for entry in entries:
                if not matches(hook, entry, models):
                    continue
                body = event_body(entry, hook.project, include_changes=hook.include_changes)
                sent = await self.sender.post(
                    hook.url, body, headers(hook.secret, entry.seq, entry.action, body)
                )
                attempts += 1
                failures = await self._recorded(hook, entry, sent, failures)
                if failures:
                    return attempts
            # Every entry read was delivered or skipped: the cursor passes them, and after a
            # short batch the entries of other projects and actions up to the head as well.
            end = entries[-1].seq if len(entries) == BATCH else max(head, hook.delivered_seq)
            await self._advance(hook.id, end)
            return attempts
        finally:
            await self._release(hook.id)

    async def _recorded(
        self, hook: Claimed, entry: JournalRow, sent: Attempt, failures: int
    ) -> int:
        """Record the attempt and its consequence in one transaction; the run of failures."""
        now = utcnow()
        async with self.database.unit_of_work(self.origin) as uow:
            uow.session.add(
                WebhookDeliveryRow(
                    webhook_id=hook.id,
                    seq=entry.seq,
                    action=entry.action,
                    attempt=failures + 1,
                    status_code=sent.status_code,
                    error=sent.error,
                    duration_ms=sent.duration_ms,
                    at=now,
                )
            )
            mine = (WebhookRow.id == hook.id) & (WebhookRow.owner == self.owner)
            if sent.delivered:
                values: dict[str, Any] = {"delivered_seq": entry.seq, "failures": 0}
                values["retry_at"] = None
                failures = 0
            else:
                failures += 1
                values = {
                    "failures": failures,
                    "retry_at": now + timedelta(seconds=backoff(failures, self.settings)),
                }
                if failures >= self.settings.max_failures:
                    values["enabled"] = False
                    record(
                        uow,
                        Action.WEBHOOK_DISABLED,
                        hook.id,
                        project_id=hook.project_id,
                        after=WebhookDisabled(
                            failures=failures, last_error=sent.error or "", seq=entry.seq
                        ),
                    )
            values["lease_until"] = now + self.lease
            await uow.session.execute(update(WebhookRow).where(mine).values(**values))
        if failures:
            log.warning("webhook %s: entry %s not delivered (%s)", hook.id, entry.seq, sent.error)
        return failures

    async def _advance(self, hook_id: int, seq: int) -> None:
        async with self.database.unit_of_work(self.origin) as uow:
            await uow.session.execute(
                update(WebhookRow)
                .where(
                    WebhookRow.id == hook_id,
                    WebhookRow.owner == self.owner,
                    WebhookRow.delivered_seq < seq,
                )
                .values(delivered_seq=seq)
            )

    async def _release(self, hook_id: int) -> None:
        async with self.database.unit_of_work(self.origin) as uow:
            await uow.session.execute(
                update(WebhookRow)
                .where(WebhookRow.id == hook_id, WebhookRow.owner == self.owner)
                .values(owner=None, lease_until=None)
            )


async def ping(
    database: Database, settings: WebhookSettings, hook: WebhookRow
) -> WebhookDeliveryRow:
    """Send a ping to a hook now and record the attempt (apart from the journal's entries:
    it moves no cursor and counts toward no run of failures)."""
    async with database.read() as session:
        project = await session.scalar(
            select(ProjectRow.name).where(ProjectRow.id == hook.project_id)
        )
    now = utcnow()
    event = {
        "id": None,
        "action": PING,
        "entity": {"type": EntityType.WEBHOOK.value, "id": hook.id},
        "project": project,
        "at": now.isoformat(),
        "actor": None,
    }
    body = json.dumps(event, separators=(",", ":"), sort_keys=True).encode()
    sender = Sender(settings)
    try:
        sent = await sender.post(hook.url, body, headers(hook.secret, None, PING, body))
    finally:
        await sender.close()
    delivery = WebhookDeliveryRow(
        webhook_id=hook.id,
        seq=None,
        action=PING,
        attempt=1,
        status_code=sent.status_code,
        error=sent.error,
        duration_ms=sent.duration_ms,
        at=now,
    )
    async with database.unit_of_work(Origin(actor="webhooks")) as uow:
        uow.session.add(delivery)
    return delivery


async def run_forever(worker: WebhookWorker, *, stop: asyncio.Event) -> None:
    """Deliver until ``stop`` is set; a failure of the database waits and tries again."""
    delay = worker.settings.poll_seconds
    while not stop.is_set():
        try:
            attempts = await worker.run_once()
            delay = worker.settings.poll_seconds if attempts == 0 else 0
        except Exception:  # a lost database must not stop delivery for good
            log.exception("webhook delivery failed, retrying")
            delay = min(max(delay * 2, worker.settings.poll_seconds), 30.0)
        if delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
