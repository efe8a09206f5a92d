"""Opaque global ids: base64 of "Type:number", checked against the types a field accepts."""

from strawberry import relay

from mlcatalog.catalog.errors import invalid

# Row ids are INTEGER columns (32-bit on PostgreSQL): a larger number names no row, and the
# database would fail on it instead of finding nothing.
MAX_ROW_ID = 2**31 - 1


def row_id(node_id: str) -> int:
    """The row id in a global id's node part; INVALID_ARGUMENT unless it is one."""
    if (
        node_id.isascii()
        and node_id.isdigit()
        and len(node_id) <= 10
        and 0 < int(node_id) <= MAX_ROW_ID
    ):
        return int(node_id)
    raise invalid("not a valid id: ids are the opaque ids the API returns")


def decode(global_id: relay.GlobalID, *types: str) -> int:
    """The row id behind ``global_id``; INVALID_ARGUMENT when it names another type."""
    if global_id.type_name not in types:
        raise invalid(
            f"expected the id of a {' or '.join(types)}, got the id of a {global_id.type_name[:40]}"
        )
    return row_id(global_id.node_id)


def decode_any(global_id: relay.GlobalID, *types: str) -> tuple[str, int]:
    return global_id.type_name, decode(global_id, *types)


def encode(type_name: str, row_id: int) -> str:
    return str(relay.GlobalID(type_name, str(row_id)))
