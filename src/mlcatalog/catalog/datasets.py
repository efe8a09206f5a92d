"""Datasets and their versions."""

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from mlcatalog.catalog import validation
from mlcatalog.catalog.errors import CatalogError, ErrorCode
from mlcatalog.catalog.journal import record
from mlcatalog.catalog.steps import create_named, flush, get, touch
from mlcatalog.store.database import UnitOfWork
from mlcatalog.store.journal import Action, DatasetCreated, DatasetVersionCreated
from mlcatalog.store.rows import DatasetRow, DatasetTagRow, DatasetVersionRow, utcnow


async def create_dataset(
    uow: UnitOfWork,
    *,
    project_id: int,
    name: str,
    owner: str | None = None,
    description: str | None = None,
    source: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> DatasetRow:
    checked_tags = validation.tags(tags or {})
    dataset = await create_named(
        uow,
        DatasetRow,
        project_id=project_id,
        name=name,
        what="dataset",
        owner=validation.line(owner, "owner", max_length=200) or uow.actor,
        description=validation.text(description, "description"),
        source=validation.line(source, "source"),
    )
    uow.session.add_all(
        DatasetTagRow(dataset_id=dataset.id, key=k, value=v) for k, v in checked_tags.items()
    )
    record(
        uow,
        Action.DATASET_CREATED,
        dataset.id,
        project_id=project_id,
        after=DatasetCreated(
            name=name, owner=dataset.owner, source=dataset.source, tags=checked_tags
        ),
    )
    return dataset


async def create_dataset_version(
    uow: UnitOfWork,
    *,
    dataset_id: int,
    label: str,
    uri: str,
    digest: str | None = None,
    size_bytes: int | None = None,
    row_count: int | None = None,
    schema: Any = None,
    description: str | None = None,
) -> DatasetVersionRow:
    dataset = await get(uow, DatasetRow, dataset_id, "dataset")
    validation.name(label, "dataset version label")
    duplicate = f"dataset {dataset.name!r} already has a version {label!r}"
    exists = select(DatasetVersionRow.id).where(
        DatasetVersionRow.dataset_id == dataset_id, DatasetVersionRow.label == label
    )
    if await uow.session.scalar(exists):
        raise CatalogError(ErrorCode.ALREADY_EXISTS, duplicate)
    version = DatasetVersionRow(
        dataset_id=dataset_id,
        label=label,
        uri=validation.required_line(uri, "uri"),
        digest=validation.line(digest, "digest", max_length=200),
        size_bytes=validation.non_negative(size_bytes, "size"),
        row_count=validation.non_negative(row_count, "row count"),
        schema=validation.json_object(schema, "schema") if schema is not None else None,
        description=validation.text(description, "description"),
        created_at=utcnow(),
        created_by=uow.actor,
    )
    uow.session.add(version)
    await flush(uow, duplicate=duplicate)
    touch(dataset, uow)
    record(
        uow,
        Action.DATASET_VERSION_CREATED,
        version.id,
        project_id=dataset.project_id,
        after=DatasetVersionCreated(
            dataset_id=dataset_id, label=label, uri=version.uri, digest=version.digest
        ),
    )
    return version
