"""Opaque global ids: base64 of "Type:number", checked against the types a field accepts."""

from strawberry import relay

from mlcatalog.catalog.errors import invalid


def decode(global_id: relay.GlobalID, *types: str) -> int:
    """The row id behind ``global_id``; INVALID_ARGUMENT when it names another type."""
    if global_id.type_name not in types:
        raise invalid(
            f"expected the id of a {' or '.join(types)}, got the id of a {global_id.type_name[:40]}"
        )
    try:
        return int(global_id.node_id)
    except ValueError:
        raise invalid("not a valid id: ids are the opaque ids the API returns") from None


def decode_any(global_id: relay.GlobalID, *types: str) -> tuple[str, int]:
    return global_id.type_name, decode(global_id, *types)


def encode(type_name: str, row_id: int) -> str:
    return str(relay.GlobalID(type_name, str(row_id)))
