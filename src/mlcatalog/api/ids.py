"""Opaque global ids: base64 of "Type:number", checked against the types a field accepts."""

from strawberry import relay

from mlcatalog.catalog.errors import invalid

# Row ids are INTEGER columns (32 bits on PostgreSQL): a number beyond names no row, and the
# drivers refuse it as a parameter (an overflow) instead of finding nothing.
MAX_ROW_ID = 2**31 - 1


def row_number(node_id: str) -> int | None:
    """The row id a global id's node part names, or None when it can name no row."""
    if not (node_id.isascii() and node_id.isdigit()) or len(node_id) > 10:
        return None
    number = int(node_id)
    return number if 0 < number <= MAX_ROW_ID else None


def decode(global_id: relay.GlobalID, *types: str) -> int:
    """The row id behind ``global_id``; INVALID_ARGUMENT when it names another type."""
    if global_id.type_name not in types:
        raise invalid(
            f"expected the id of a {' or '.join(types)}, got the id of a {global_id.type_name[:40]}"
        )
    number = row_number(global_id.node_id)
    if number is None:
        raise invalid("not a valid id: ids are the opaque ids the API returns")
    return number


def decode_any(global_id: relay.GlobalID, *types: str) -> tuple[str, int]:
    return global_id.type_name, decode(global_id, *types)


def encode(type_name: str, row_id: int) -> str:
    return str(relay.GlobalID(type_name, str(row_id)))
