"""Deployments: where a version runs (an endpoint in an environment), its status and its share of
the endpoint's traffic. Recorded by whoever deploys (a CD pipeline's token); every change is
journaled and filed under the model."""

import math
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select

from mlcatalog.catalog import validation
from mlcatalog.catalog.errors import CatalogError, ErrorCode, invalid, not_found
from mlcatalog.catalog.journal import diff, record
from mlcatalog.catalog.lifecycle import Stage
from mlcatalog.catalog.steps import flush, get, lock_model, stamp, touch
from mlcatalog.store.database import UnitOfWork
from mlcatalog.store.journal import Action, DeploymentFields
from mlcatalog.store.rows import DeploymentRow, ModelRow, ModelVersionRow


class DeploymentStatus(StrEnum):
    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    DRAINING = "DRAINING"
    STOPPED = "STOPPED"
    FAILED = "FAILED"


# Deployments that take traffic: their shares at one endpoint add up to at most 1.
SERVING = (DeploymentStatus.PENDING, DeploymentStatus.ACTIVE, DeploymentStatus.DRAINING)
ENDPOINT_SCHEMES = ("http", "https", "grpc", "grpcs")
MAX_ENDPOINT = 2000
MAX_PER_VERSION = 100
SHARE_SLACK = 1e-9  # shares such as 0.1 + 0.2 + 0.7 add up to 1 in floating point only roughly


def endpoint(value: str) -> str:
    """An absolute URL with a host, of a scheme in ENDPOINT_SCHEMES, without credentials."""
    checked = validation.required_line(value, "endpoint", max_length=MAX_ENDPOINT)
    shown = repr(checked[:100])
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in checked):
        raise invalid(f"endpoint {shown} holds spaces or control characters")
    try:
        parts = urlsplit(checked)
        parts.port  # noqa: B018  # raises on a port that is no number or out of range
    except ValueError:
        raise invalid(f"endpoint {shown} is not a URL") from None
    if parts.scheme not in ENDPOINT_SCHEMES or not parts.hostname:
        raise invalid(
            f"endpoint {shown} is not a URL with a host and a scheme of"
            f" {', '.join(ENDPOINT_SCHEMES)}"
        )
    if parts.username is not None or parts.password is not None:
        raise invalid("an endpoint must not hold credentials: the journal and every reader see it")
    return checked


def _share(value: float) -> float:
    if not math.isfinite(value) or not 0 <= value <= 1:
        raise invalid(f"traffic share {value!r} is not between 0 and 1")
    return value


def _fields(row: DeploymentRow) -> DeploymentFields:
    return DeploymentFields(
        version_id=row.version_id,
        model_id=row.model_id,
        environment=row.environment,
        endpoint=row.endpoint,
        status=row.status,
        traffic_share=row.traffic_share,
    )


async def _check_share(uow: UnitOfWork, row: DeploymentRow) -> None:
    """The serving deployments at the row's endpoint (in its environment) take at most all of
    its traffic. Callers hold the model's lock, so two writers cannot each pass on their own;
    models that share one endpoint are not serialised (an endpoint normally serves one model)."""
    if row.status not in SERVING:
        return
    others = await uow.session.scalar(
        select(func.coalesce(func.sum(DeploymentRow.traffic_share), 0.0)).where(
            DeploymentRow.environment == row.environment,
            DeploymentRow.endpoint == row.endpoint,
            DeploymentRow.status.in_(SERVING),
            DeploymentRow.id != (row.id or 0),
        )
    )
    if (others or 0.0) + row.traffic_share > 1 + SHARE_SLACK:
        raise CatalogError(
            ErrorCode.FAILED_PRECONDITION,
            f"the deployments at this endpoint in {row.environment!r} already take"
            f" {others:.4g} of its traffic: {row.traffic_share:.4g} more would pass 1",
        )


async def record_deployment(
    uow: UnitOfWork,
    *,
    version_id: int,
    environment: str,
    endpoint_url: str,
    status: DeploymentStatus = DeploymentStatus.ACTIVE,
    traffic_share: float = 1.0,
) -> DeploymentRow:
    row = DeploymentRow(
        version_id=version_id,
        environment=validation.name(environment, "environment", max_length=100),
        endpoint=endpoint(endpoint_url),
        status=DeploymentStatus(status),
        traffic_share=_share(traffic_share),
        **stamp(uow),
    )
    version = await get(uow, ModelVersionRow, version_id, "model version")
    if version.stage == Stage.ARCHIVED:
        raise CatalogError(
            ErrorCode.FAILED_PRECONDITION,
            f"version {version.number} is ARCHIVED: restore it before deploying it",
        )
    await get(uow, ModelRow, version.model_id, "model")
    model = await lock_model(uow, version.model_id)
    count = await uow.session.scalar(
        select(func.count()).where(DeploymentRow.version_id == version_id)
    )
    if (count or 0) >= MAX_PER_VERSION:
        raise invalid(f"a version has at most {MAX_PER_VERSION} deployments: remove old ones")
    row.model_id = model.id
    await _check_share(uow, row)
    uow.session.add(row)
    await flush(
        uow, duplicate=f"version {version.number} is already deployed there in {environment!r}"
    )
    record(
        uow,
        Action.DEPLOYMENT_RECORDED,
        row.id,
        project_id=model.project_id,
        after=_fields(row),
        model_id=model.id,
    )
    return row


async def _deployment(uow: UnitOfWork, deployment_id: int) -> tuple[DeploymentRow, ModelRow]:
    row = await uow.session.get(DeploymentRow, deployment_id)
    if row is None:
        raise not_found(f"deployment {deployment_id}")
    # Through its model: NOT_FOUND in a project the actor does not see.
    try:
        model = await get(uow, ModelRow, row.model_id, "model")
    except CatalogError:
        raise not_found(f"deployment {deployment_id}") from None
    return row, model


async def update_deployment(
    uow: UnitOfWork, *, deployment_id: int, changes: dict[str, Any]
) -> DeploymentRow:
    """Change a deployment's status or traffic share; fields not in ``changes`` stay."""
    row, model = await _deployment(uow, deployment_id)
    await lock_model(uow, model.id)
    await uow.session.refresh(row)
    checked: dict[str, Any] = {}
    if changes.get("status") is not None:
        checked["status"] = DeploymentStatus(changes["status"])
    if changes.get("traffic_share") is not None:
        checked["traffic_share"] = _share(changes["traffic_share"])
    before, after = diff(row, checked)
    if after:
        await _check_share(uow, row)
        touch(row, uow)
        record(
            uow,
            Action.DEPLOYMENT_UPDATED,
            row.id,
            project_id=model.project_id,
            before=before,
            after=after,
            model_id=model.id,
        )
    return row


async def remove_deployment(uow: UnitOfWork, *, deployment_id: int) -> DeploymentRow:
    row, model = await _deployment(uow, deployment_id)
    await uow.session.delete(row)
    record(
        uow,
        Action.DEPLOYMENT_REMOVED,
        row.id,
        project_id=model.project_id,
        before=_fields(row),
        model_id=model.id,
    )
    return row
