"""The lifecycle's rules: the stages, the moves allowed between them, and what PRODUCTION locks.

versions.set_stage applies every move (promotions, demotions, archiving, restoring, rollbacks);
this module says which moves there are.
"""

from enum import StrEnum

from mlcatalog.catalog.errors import CatalogError, ErrorCode
from mlcatalog.store.rows import ModelVersionRow


class Stage(StrEnum):
    NONE = "NONE"
    DEVELOPMENT = "DEVELOPMENT"
    STAGING = "STAGING"
    PRODUCTION = "PRODUCTION"
    ARCHIVED = "ARCHIVED"


# Forward one step at a time, so a version reaches PRODUCTION only through STAGING (where the
# gates and approvals sit); back one step from STAGING and PRODUCTION (a demotion); ARCHIVED from
# anywhere. Restoring from ARCHIVED goes to DEVELOPMENT, not to the stage the version left: an
# old version climbs through STAGING again, under today's gates. Putting the previous production
# version straight back is rollbackProduction's move, not a restore.
MOVES: dict[Stage, tuple[Stage, ...]] = {
    Stage.NONE: (Stage.DEVELOPMENT, Stage.ARCHIVED),
    Stage.DEVELOPMENT: (Stage.STAGING, Stage.ARCHIVED),
    Stage.STAGING: (Stage.DEVELOPMENT, Stage.PRODUCTION, Stage.ARCHIVED),
    Stage.PRODUCTION: (Stage.STAGING, Stage.ARCHIVED),
    Stage.ARCHIVED: (Stage.DEVELOPMENT,),
}


def check_move(version: ModelVersionRow, stage: Stage) -> None:
    """Refuse a move MOVES does not list, saying which moves the version's stage allows."""
    current = Stage(version.stage)
    if stage not in MOVES[current]:
        *others, last = MOVES[current]
        allowed = f"{', '.join(others)} or {last}" if others else last
        raise CatalogError(
            ErrorCode.FAILED_PRECONDITION,
            f"version {version.number} is in {current}: it may move to {allowed}, not {stage}",
        )


def refuse_locked(version: ModelVersionRow, what: str) -> None:
    """A version in PRODUCTION keeps what it was promoted with (its artifact's definition, its
    metrics, its lineage) until it leaves the stage."""
    if version.stage == Stage.PRODUCTION:
        raise CatalogError(
            ErrorCode.FAILED_PRECONDITION,
            f"version {version.number} is in PRODUCTION: its {what} cannot change until it"
            " leaves the stage",
        )
