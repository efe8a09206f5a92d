"""Webhooks: a project's hooks, their filters and secrets (delivery is events/webhooks.py)."""

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select

from mlcatalog.catalog import validation
from mlcatalog.catalog.errors import invalid
from mlcatalog.catalog.journal import diff, record
from mlcatalog.catalog.steps import flush, get, stamp, touch
from mlcatalog.catalog.versions import Stage
from mlcatalog.store.database import UnitOfWork
from mlcatalog.store.journal import Action, Empty, Webhook, WebhookFields
from mlcatalog.store.rows import JournalHeadRow, ModelRow, ProjectRow, WebhookRow

MAX_URL = 2000
MAX_FILTER = 50  # actions, stages or models in a filter
MIN_SECRET, MAX_SECRET = 16, 200
MAX_HOOKS = 20  # per project: each costs a delivery stream
SUBSCRIBABLE = frozenset(Action)


@dataclass(frozen=True)
class NewWebhook:
    """A hook just made, with its secret: the only moment the secret is handed out."""

    webhook: WebhookRow
    secret: str


def _url(value: str) -> str:
    url = validation.required_line(value, "url", max_length=MAX_URL)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise invalid("url must be an absolute http or https URL")
    if parts.username is not None or parts.password is not None:
        # The signature authenticates us to the receiver; credentials in a URL leak into logs.
        raise invalid("url must not hold a user name or password")
    try:
        parts.port  # noqa: B018 (raises for a port that is not a number)
    except ValueError:
        raise invalid("url has a port that is not a number") from None
    return url


def _secret(value: str) -> str:
    if not MIN_SECRET <= len(value) <= MAX_SECRET or not value.isprintable():
        raise invalid(f"secret must be {MIN_SECRET} to {MAX_SECRET} printable characters")
    return value


def _actions(values: Sequence[str]) -> list[str]:
    if not 1 <= len(values) <= MAX_FILTER:
        raise invalid(f"actions must name 1 to {MAX_FILTER} actions")
    unknown = [v for v in values if v not in SUBSCRIBABLE]
    if unknown:
        raise invalid(f"actions: {unknown[0][:100]!r} is not a journal action")
    return sorted(set(values))


def _stages(values: Sequence[str]) -> list[str]:
    if len(values) > MAX_FILTER:
        raise invalid(f"stages: at most {MAX_FILTER}")
    try:
        return sorted({Stage(v).value for v in values})
    except ValueError:
        raise invalid(f"stages: one of {', '.join(Stage)}") from None


async def _models(uow: UnitOfWork, project_id: int, model_ids: Sequence[int]) -> list[int]:
    if len(model_ids) > MAX_FILTER:
        raise invalid(f"models: at most {MAX_FILTER}")
    ids = sorted(set(model_ids))
    found = set(
        await uow.session.scalars(
            select(ModelRow.id).where(ModelRow.id.in_(ids), ModelRow.project_id == project_id)
        )
    )
    if missing := [i for i in ids if i not in found]:
        raise invalid(f"models: model {missing[0]} is not in this hook's project")
    return ids


def _journaled(hook: WebhookRow) -> Webhook:
    return Webhook(
        url=hook.url,
        actions=list(hook.actions),
        stages=list(hook.stages),
        model_ids=list(hook.model_ids),
        include_changes=hook.include_changes,
        enabled=hook.enabled,
    )


async def create_webhook(
    uow: UnitOfWork,
    *,
    project_id: int,
    url: str,
    actions: Sequence[str],
    secret: str | None = None,
    stages: Sequence[str] = (),
    model_ids: Sequence[int] = (),
    include_changes: bool = False,
    enabled: bool = True,
) -> NewWebhook:
    """A hook that receives the project's entries from the journal's head on (not its past)."""
    await get(uow, ProjectRow, project_id, "project")
    count = await uow.session.scalar(
        select(func.count()).select_from(WebhookRow).where(WebhookRow.project_id == project_id)
    )
    if (count or 0) >= MAX_HOOKS:
        raise invalid(f"a project holds at most {MAX_HOOKS} webhooks")
    chosen = _secret(secret) if secret is not None else secrets.token_urlsafe(32)
    hook = WebhookRow(
        project_id=project_id,
        url=_url(url),
        secret=chosen,
        actions=_actions(actions),
        stages=_stages(stages),
        model_ids=await _models(uow, project_id, model_ids),
        include_changes=include_changes,
        enabled=enabled,
        delivered_seq=await _head(uow),
        failures=0,
        **stamp(uow),
    )
    uow.session.add(hook)
    await flush(uow, duplicate="webhook already exists")
    record(uow, Action.WEBHOOK_CREATED, hook.id, project_id=project_id, after=_journaled(hook))
    return NewWebhook(hook, chosen)


async def _head(uow: UnitOfWork) -> int:
    # The recorded head of the chain: appends move it under the journal lock, so entries after
    # it are the ones committed after this hook (those are what it receives).
    return int(await uow.session.scalar(select(JournalHeadRow.seq)) or 0)


async def update_webhook(
    uow: UnitOfWork, *, webhook_id: int, secret: str | None = None, **changes: Any
) -> WebhookRow:
    """Change a hook; enabling it again, or a new URL or secret, clears its run of failures
    (it retries at once)."""
    hook = await get(uow, WebhookRow, webhook_id, "webhook")
    updates: dict[str, Any] = {}
    if "url" in changes:
        updates["url"] = _url(changes.pop("url"))
    if "actions" in changes:
        updates["actions"] = _actions(changes.pop("actions"))
    if "stages" in changes:
        updates["stages"] = _stages(changes.pop("stages"))
    if "model_ids" in changes:
        updates["model_ids"] = await _models(uow, hook.project_id, changes.pop("model_ids"))
    for key in ("include_changes", "enabled"):
        if key in changes:
            updates[key] = bool(changes.pop(key))
    if changes:
        raise invalid(f"webhook has no field {next(iter(changes))!r}")
    was_enabled = hook.enabled
    before, after = diff(hook, updates)
    if secret is not None:
        hook.secret = _secret(secret)
        before["secret_changed"], after["secret_changed"] = False, True
    if hook.include_changes and ("url" in after or secret is not None):
        # Where the changes go, changed: authorized as making such a hook (policy_objects).
        before.setdefault("include_changes", True)
        after["include_changes"] = True
    if (hook.enabled and not was_enabled) or "url" in after or secret is not None:
        # Enabled again, or pointed elsewhere: what failed may work now, so try at once.
        hook.failures, hook.retry_at = 0, None
    if after:
        touch(hook, uow)
        record(
            uow,
            Action.WEBHOOK_UPDATED,
            hook.id,
            project_id=hook.project_id,
            before=WebhookFields(**before),  # type: ignore[typeddict-item]
            after=WebhookFields(**after),  # type: ignore[typeddict-item]
        )
    return hook


async def delete_webhook(uow: UnitOfWork, *, webhook_id: int) -> int:
    hook = await get(uow, WebhookRow, webhook_id, "webhook")
    before = _journaled(hook)
    await uow.session.delete(hook)
    record(uow, Action.WEBHOOK_DELETED, webhook_id, project_id=hook.project_id, before=before)
    return webhook_id


async def request_ping(uow: UnitOfWork, *, webhook_id: int) -> WebhookRow:
    """Journal that a ping was asked for (the caller sends it once this commits)."""
    hook = await get(uow, WebhookRow, webhook_id, "webhook")
    record(uow, Action.WEBHOOK_TESTED, hook.id, project_id=hook.project_id, after=Empty())
    return hook
