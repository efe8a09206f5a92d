"""Registered models: register, edit, tag, archive, restore and delete."""

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, select

from mlcatalog.catalog import validation
from mlcatalog.catalog.errors import CatalogError, ErrorCode, invalid
from mlcatalog.catalog.journal import diff, record
from mlcatalog.catalog.steps import flush, forget_links, get, stamp, touch
from mlcatalog.store.database import UnitOfWork
from mlcatalog.store.rows import (
    DatasetRow,
    DatasetTagRow,
    ModelRow,
    ModelTagRow,
    ModelVersionRow,
    ModelVersionTagRow,
    ProjectRow,
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
    await get(uow, ProjectRow, project_id, "project")
    validation.name(name, "model name")
    checked_tags = validation.tags(tags or {})
    duplicate = f"model {name!r} already exists in this project"
    exists = select(ModelRow.id).where(ModelRow.project_id == project_id, ModelRow.name == name)
    if await uow.session.scalar(exists):
        raise CatalogError(ErrorCode.ALREADY_EXISTS, duplicate)
    model = ModelRow(
        project_id=project_id,
        name=name,
        owner=validation.line(owner, "owner", max_length=200) or uow.actor,
        description=validation.text(description, "description"),
        task=_task(task),
        version_count=0,
        **stamp(uow),
    )
    uow.session.add(model)
    await flush(uow, duplicate=duplicate)
    uow.session.add_all(
        ModelTagRow(model_id=model.id, key=k, value=v) for k, v in checked_tags.items()
    )
    record(
        uow,
        action="model.registered",
        entity_type="Model",
        entity_id=model.id,
        project_id=project_id,
        after={"name": name, "owner": model.owner, "task": model.task, "tags": checked_tags},
    )
    return model


async def update_model(uow: UnitOfWork, *, model_id: int, changes: dict[str, Any]) -> ModelRow:
    """Change any of description, owner and task; fields not in ``changes`` stay."""
    model = await get(uow, ModelRow, model_id, "model")
    checked: dict[str, Any] = {}
    if "description" in changes:
        checked["description"] = validation.text(changes["description"], "description")
    if "owner" in changes:
        checked["owner"] = validation.required_line(changes["owner"], "owner", max_length=200)
    if "task" in changes:
        checked["task"] = _task(changes["task"])
    before, after = diff(model, checked)
    if after:
        touch(model, uow)
        record(
            uow,
            action="model.updated",
            entity_type="Model",
            entity_id=model.id,
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
    before = {"archived_at": model.archived_at}
    model.archived_at = utcnow() if archived else None
    touch(model, uow)
    record(
        uow,
        action="model.archived" if archived else "model.restored",
        entity_type="Model",
        entity_id=model.id,
        project_id=model.project_id,
        before=before,
        after={"archived_at": model.archived_at},
    )
    return model


async def delete_model(uow: UnitOfWork, *, model_id: int) -> ModelRow:
    """Delete a model, its versions and their documents and lineage; the journal keeps all."""
    model = await get(uow, ModelRow, model_id, "model")
    version_ids = list(
        await uow.session.scalars(
            select(ModelVersionRow.id).where(ModelVersionRow.model_id == model_id)
        )
    )
    for entity_type, ids in (("Model", [model_id]), ("ModelVersion", version_ids)):
        await forget_links(uow, entity_type, ids)
    await uow.session.delete(model)
    await uow.session.flush()
    record(
        uow,
        action="model.deleted",
        entity_type="Model",
        entity_id=model_id,
        project_id=model.project_id,
        before={"name": model.name, "version_ids": version_ids},
    )
    return model


TAGGABLE: dict[str, tuple[type[Any], type[Any], Any]] = {
    "Model": (ModelRow, ModelTagRow, ModelTagRow.model_id),
    "ModelVersion": (ModelVersionRow, ModelVersionTagRow, ModelVersionTagRow.version_id),
    "Dataset": (DatasetRow, DatasetTagRow, DatasetTagRow.dataset_id),
}


async def _project_of(uow: UnitOfWork, entity_type: str, entity: Any) -> int:
    if entity_type == "ModelVersion":
        model = await get(uow, ModelRow, entity.model_id, "model")
        return model.project_id
    return int(entity.project_id)


async def set_tags(
    uow: UnitOfWork, *, entity_type: str, entity_id: int, tags: Mapping[str, str]
) -> Any:
    """Set (add or overwrite) tags on a model, a model version or a dataset."""
    row_type, tag_type, owner_column = TAGGABLE[entity_type]
    entity = await get(uow, row_type, entity_id, entity_type)
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
            action="tags.set",
            entity_type=entity_type,
            entity_id=entity_id,
            project_id=await _project_of(uow, entity_type, entity),
            before={"tags": before},
            after={"tags": after},
        )
    return entity


async def remove_tags(uow: UnitOfWork, *, entity_type: str, entity_id: int, keys: list[str]) -> Any:
    row_type, tag_type, owner_column = TAGGABLE[entity_type]
    entity = await get(uow, row_type, entity_id, entity_type)
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
            action="tags.removed",
            entity_type=entity_type,
            entity_id=entity_id,
            project_id=await _project_of(uow, entity_type, entity),
            before={"tags": removed},
        )
    return entity
