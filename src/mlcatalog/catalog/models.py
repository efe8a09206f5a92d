"""Registered models: register, edit, tag, archive, restore and delete."""

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select

from mlcatalog.catalog import validation
from mlcatalog.catalog.errors import invalid
from mlcatalog.catalog.journal import diff, record
from mlcatalog.catalog.removal import take_versions
from mlcatalog.catalog.steps import LABELS, create_named, get, project_of, touch
from mlcatalog.store.database import UnitOfWork
from mlcatalog.store.journal import (
    Action,
    Archival,
    EntityType,
    ModelDeleted,
    ModelRegistered,
    Tags,
)
from mlcatalog.store.queries import TAGS_OF
from mlcatalog.store.rows import (
    DatasetRow,
    ModelRow,
    ModelTagRow,
    ModelVersionRow,
    utcnow,
)

TASKS = (
    "classification",
    "regression",
    "ranking",
    "clustering",
    "forecasting",
    "detection",
    "segmentation",
    "generation",
    "embedding",
    "recommendation",
    "other",
)


def _timestamp(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _task(value: str | None) -> str | None:
    if value is not None and value not in TASKS:
        raise invalid(f"task {value[:50]!r} is not one of {', '.join(TASKS)}")
    return value


async def register_model(
    uow: UnitOfWork,
    *,
    project_id: int,
    name: str,
    owner: str | None = None,
    description: str | None = None,
    task: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> ModelRow:
    checked_tags = validation.tags(tags or {})
    model = await create_named(
        uow,
        ModelRow,
        project_id=project_id,
        name=name,
        what="model",
        owner=validation.line(owner, "owner", max_length=200) or uow.actor,
        description=validation.text(description, "description"),
        task=_task(task),
        version_count=0,
    )
    uow.session.add_all(
        ModelTagRow(model_id=model.id, key=k, value=v) for k, v in checked_tags.items()
    )
    record(
        uow,
        Action.MODEL_REGISTERED,
        model.id,
        project_id=project_id,
        after=ModelRegistered(name=name, owner=model.owner, task=model.task, tags=checked_tags),
    )
    return model


async def update_model(uow: UnitOfWork, *, model_id: int, changes: dict[str, Any]) -> ModelRow:
    """Change any of description, owner, task and whether several versions may be in
    PRODUCTION at once; fields not in ``changes`` stay."""
    model = await get(uow, ModelRow, model_id, "model")
    checked: dict[str, Any] = {}
    if "description" in changes:
        checked["description"] = validation.text(changes["description"], "description")
    if "owner" in changes:
        checked["owner"] = validation.required_line(changes["owner"], "owner", max_length=200)
    if "task" in changes:
        checked["task"] = _task(changes["task"])
    if "allows_several_in_production" in changes:
        several = changes["allows_several_in_production"]
        if not isinstance(several, bool):
            raise invalid("allowsSeveralInProduction is true or false")
        checked["allows_several_in_production"] = several
    before, after = diff(model, checked)
    if after:
        touch(model, uow)
        record(
            uow,
            Action.MODEL_UPDATED,
            model.id,
            project_id=model.project_id,
            before=before,
            after=after,
        )
    return model


async def set_archived(uow: UnitOfWork, *, model_id: int, archived: bool) -> ModelRow:
    """Archive (hide from lists by default) or restore a model."""
    model = await get(uow, ModelRow, model_id, "model")
    if (model.archived_at is not None) == archived:
        return model
    before = Archival(archived_at=_timestamp(model.archived_at))
    model.archived_at = utcnow() if archived else None
    touch(model, uow)
    record(
        uow,
        Action.MODEL_ARCHIVED if archived else Action.MODEL_RESTORED,
        model.id,
        project_id=model.project_id,
        before=before,
        after=Archival(archived_at=_timestamp(model.archived_at)),
    )
    return model


async def delete_model(uow: UnitOfWork, *, model_id: int) -> ModelRow:
    """Delete a model, its versions and everything theirs; the journal says what went."""
    model = await get(uow, ModelRow, model_id, "model")
    tags = dict(
        (
            await uow.session.execute(
                select(ModelTagRow.key, ModelTagRow.value).where(ModelTagRow.model_id == model_id)
            )
        ).all()
    )
    versions = select(ModelVersionRow.id).where(ModelVersionRow.model_id == model_id)
    taken = await take_versions(uow, versions, model_id=model_id)
    await uow.session.delete(model)
    await uow.session.flush()
    record(
        uow,
        Action.MODEL_DELETED,
        model_id,
        project_id=model.project_id,
        before=ModelDeleted(
            name=model.name,
            owner=model.owner,
            tags=dict(sorted(tags.items())),
            aliases=taken.aliases,
            versions=taken.versions,
            version_tags=taken.version_tags,
            metrics=taken.metrics,
            comments=taken.comments,
            documents=taken.documents,
            lineage=taken.lineage,
        ),
    )
    return model


TAGGED_ROWS: dict[EntityType, type[Any]] = {
    EntityType.MODEL: ModelRow,
    EntityType.MODEL_VERSION: ModelVersionRow,
    EntityType.DATASET: DatasetRow,
}


async def set_tags(
    uow: UnitOfWork, *, entity_type: str, entity_id: int, tags: Mapping[str, str]
) -> Any:
    """Set (add or overwrite) tags on a model, a model version or a dataset."""
    kind = EntityType(entity_type)
    row_type, (tag_type, owner_column) = TAGGED_ROWS[kind], TAGS_OF[kind]
    entity = await get(uow, row_type, entity_id, LABELS[kind])
    checked = validation.tags(tags)
    current = {
        tag.key: tag
        for tag in await uow.session.scalars(select(tag_type).where(owner_column == entity_id))
    }
    if len(current.keys() | checked.keys()) > validation.MAX_TAGS:
        raise invalid(f"at most {validation.MAX_TAGS} tags per entity")
    before, after = {}, {}
    for key, value in checked.items():
        tag = current.get(key)
        if tag is None:
            uow.session.add(tag_type(**{owner_column.key: entity_id, "key": key, "value": value}))
        elif tag.value != value:
            before[key] = tag.value
            tag.value = value
        else:
            continue
        after[key] = value
    if after:
        touch(entity, uow)
        record(
            uow,
            Action.TAGS_SET,
            entity_id,
            entity_type=kind,
            project_id=await project_of(uow, kind, entity_id),
            before=Tags(tags=before),
            after=Tags(tags=after),
        )
    return entity


async def remove_tags(uow: UnitOfWork, *, entity_type: str, entity_id: int, keys: list[str]) -> Any:
    kind = EntityType(entity_type)
    row_type, (tag_type, owner_column) = TAGGED_ROWS[kind], TAGS_OF[kind]
    entity = await get(uow, row_type, entity_id, LABELS[kind])
    tags = await uow.session.scalars(
        select(tag_type).where(owner_column == entity_id, tag_type.key.in_(keys))
    )
    removed = {tag.key: tag.value for tag in tags}
    if removed:
        await uow.session.execute(
            delete(tag_type).where(owner_column == entity_id, tag_type.key.in_(list(removed)))
        )
        touch(entity, uow)
        record(
            uow,
            Action.TAGS_REMOVED,
            entity_id,
            entity_type=kind,
            project_id=await project_of(uow, kind, entity_id),
            before=Tags(tags=removed),
        )
    return entity
