"""Stage moves under the project's rules: a direct move where no approval is required, or a
request that a second person approves (which moves the version), rejects, or its requester
cancels. Every move into a stage passes that stage's quality gates first."""

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from mlcatalog.catalog import gates, lifecycle, validation
from mlcatalog.catalog.errors import CatalogError, ErrorCode
from mlcatalog.catalog.journal import bounded, record
from mlcatalog.catalog.projects import settings_of
from mlcatalog.catalog.steps import flush, get, lock_model, lock_version
from mlcatalog.catalog.versions import Stage, StageChange, create_model_version, set_stage
from mlcatalog.store.database import UnitOfWork
from mlcatalog.store.journal import (
    Action,
    Status,
    TransitionDecided,
    TransitionRequested,
)
from mlcatalog.store.rows import (
    ModelRow,
    ModelVersionRow,
    ProjectRow,
    StageTransitionRequestRow,
    utcnow,
)

MAX_COMMENT = 2000  # characters of a request's or a decision's comment


class RequestStatus(StrEnum):
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"


def _comment(comment: str | None) -> str:
    return validation.text(comment, "comment", max_length=MAX_COMMENT)


async def _refuse_unapproved(
    uow: UnitOfWork, project_id: int, stage: Stage, *, doing: str, instead: str
) -> None:
    if stage in (await settings_of(uow, project_id)).require_approval:
        project = await get(uow, ProjectRow, project_id, "project")
        raise CatalogError(
            ErrorCode.FAILED_PRECONDITION,
            f"project {project.name!r} requires approval to {doing} {stage}: {instead}",
        )


async def move_stage(
    uow: UnitOfWork, *, version_id: int, stage: Stage, archive_others: bool = False
) -> StageChange:
    """A direct move: refused into a stage the project requires approval for; gates hold."""
    version = await lock_version(uow, version_id)
    model = await get(uow, ModelRow, version.model_id, "model")
    if version.stage != stage:
        # A move the lifecycle refuses is named as such, before approvals and gates.
        lifecycle.check_move(version, stage)
        await _refuse_unapproved(
            uow,
            model.project_id,
            stage,
            doing="move a version into",
            instead="request it with requestStageTransition",
        )
        await gates.enforce(uow, version=version, project_id=model.project_id, stage=stage)
    return await set_stage(uow, version_id=version_id, stage=stage, archive_others=archive_others)


async def create_version(uow: UnitOfWork, *, stage: Stage, **arguments: Any) -> ModelVersionRow:
    """versions.create_model_version under the project's rules: creating a version in a stage
    is entering it, so a stage that requires approval refuses it and the stage's gates hold for
    the version as created (its metrics, its training data)."""
    if stage == Stage.NONE:
        return await create_model_version(uow, stage=stage, **arguments)
    model = await get(uow, ModelRow, arguments["model_id"], "model")
    await lock_model(uow, model.id)  # what the gates read holds still until commit (lock_version)
    await _refuse_unapproved(
        uow,
        model.project_id,
        stage,
        doing="create a version in",
        instead="create it in an earlier stage, then request the move with requestStageTransition",
    )
    version = await create_model_version(uow, stage=stage, **arguments)
    # After its metrics and lineage are written, so the gates see the version as created.
    await gates.enforce(uow, version=version, project_id=model.project_id, stage=stage)
    return version


async def request_transition(
    uow: UnitOfWork, *, version_id: int, stage: Stage, comment: str | None = None
) -> StageTransitionRequestRow:
    """Ask to move a version; one request per version may be pending (ALREADY_EXISTS)."""
    text = _comment(comment)
    version = await get(uow, ModelVersionRow, version_id, "model version")
    model = await get(uow, ModelRow, version.model_id, "model")
    if version.stage == stage:
        raise CatalogError(
            ErrorCode.FAILED_PRECONDITION, f"version {version.number} is already in {stage}"
        )
    lifecycle.check_move(version, stage)  # a move that could never be applied is not asked
    request = StageTransitionRequestRow(
        project_id=model.project_id,
        model_id=model.id,
        version_id=version.id,
        from_stage=version.stage,
        to_stage=stage,
        status=RequestStatus.PENDING,
        comment=text,
        created_at=utcnow(),
        created_by=uow.actor,
    )
    uow.session.add(request)
    await flush(
        uow, duplicate=f"version {version.number} already has a pending stage transition request"
    )
    record(
        uow,
        Action.STAGE_TRANSITION_REQUESTED,
        request.id,
        project_id=model.project_id,
        after=TransitionRequested(
            version_id=version.id,
            from_stage=request.from_stage,
            to_stage=request.to_stage,
            status=request.status,
            comment=bounded(text),
        ),
    )
    return request


async def _pending(uow: UnitOfWork, request_id: int) -> StageTransitionRequestRow:
    request = await get(uow, StageTransitionRequestRow, request_id, "stage transition request")
    # Read it again under a row lock (PostgreSQL; SQLite has one writer): of two concurrent
    # decisions the second waits, then finds the request decided, and cannot move twice.
    await uow.session.refresh(request, with_for_update=True)
    if request.status != RequestStatus.PENDING:
        raise CatalogError(
            ErrorCode.FAILED_PRECONDITION,
            f"stage transition request {request_id} is {request.status}, no longer pending",
        )
    return request


async def _four_eyes(uow: UnitOfWork, request: StageTransitionRequestRow, verb: str) -> None:
    """Under four eyes a person decides: the same person may hold a login and a token, whose
    subjects differ, so a decision made with an API token proves no second pair of eyes."""
    if uow.origin.token_name is None:
        return
    if (await settings_of(uow, request.project_id)).four_eyes:
        raise CatalogError(
            ErrorCode.FORBIDDEN,
            f"this project requires four eyes: a person must {verb} a move, not an API token",
        )


def _decide(
    uow: UnitOfWork,
    request: StageTransitionRequestRow,
    status: RequestStatus,
    action: Action,
    comment: str | None,
) -> None:
    text = _comment(comment) if comment is not None else None
    request.status = status
    request.decided_at, request.decided_by = utcnow(), uow.actor
    request.decision_comment = text
    record(
        uow,
        action,
        request.id,
        project_id=request.project_id,
        before=Status(status=RequestStatus.PENDING),
        after=TransitionDecided(status=status, comment=None if text is None else bounded(text)),
    )


@dataclass(frozen=True)
class Approval:
    """An approved request and the stage change it made."""

    request: StageTransitionRequestRow
    change: StageChange


async def approve_transition(
    uow: UnitOfWork, *, request_id: int, comment: str | None = None
) -> Approval:
    """Approve a pending request and move its version, in this transaction: the version must
    still be where it was when requested, and pass the gates of the stage it enters. The stage
    change's journal entry names the request (``approval_id``)."""
    # The model's lock first (lock_version: before the gates), then the request's: one order.
    asked = await get(uow, StageTransitionRequestRow, request_id, "stage transition request")
    version = await lock_version(uow, asked.version_id)
    request = await _pending(uow, request_id)
    await _four_eyes(uow, request, "approve")
    if request.created_by == uow.actor and (await settings_of(uow, request.project_id)).four_eyes:
        raise CatalogError(
            ErrorCode.FORBIDDEN,
            "this project requires four eyes: the requester of a move cannot approve it",
        )
    stage = Stage(request.to_stage)
    if version.stage != request.from_stage:
        raise CatalogError(
            ErrorCode.FAILED_PRECONDITION,
            f"version {version.number} moved from {request.from_stage} to {version.stage} since"
            " the request: reject it and request again",
        )
    await gates.enforce(uow, version=version, project_id=request.project_id, stage=stage)
    _decide(uow, request, RequestStatus.APPROVED, Action.STAGE_TRANSITION_APPROVED, comment)
    change = await set_stage(uow, version_id=version.id, stage=stage, approval_id=request.id)
    return Approval(request=request, change=change)


async def reject_transition(
    uow: UnitOfWork, *, request_id: int, comment: str | None = None
) -> StageTransitionRequestRow:
    request = await _pending(uow, request_id)
    await _four_eyes(uow, request, "reject")
    _decide(uow, request, RequestStatus.REJECTED, Action.STAGE_TRANSITION_REJECTED, comment)
    return request


async def cancel_transition(
    uow: UnitOfWork, *, request_id: int, comment: str | None = None
) -> StageTransitionRequestRow:
    """Only the requester cancels (others reject)."""
    request = await _pending(uow, request_id)
    if request.created_by != uow.actor:
        raise CatalogError(
            ErrorCode.FORBIDDEN,
            f"only the requester ({request.created_by}) may cancel a request; others reject it",
        )
    _decide(uow, request, RequestStatus.CANCELLED, Action.STAGE_TRANSITION_CANCELLED, comment)
    return request
