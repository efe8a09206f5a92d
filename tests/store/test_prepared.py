"""The read path's statements are built once per shape (store/paging.prepared), and bounded."""

from mlcatalog.store import paging


def test_a_shape_is_built_once_and_the_store_starts_over_when_full() -> None:
    built: list[int] = []

    def build(n: int) -> object:
        built.append(n)
        return object()

    first = paging.prepared(("test", 0), lambda: build(0))
    assert paging.prepared(("test", 0), lambda: build(0)) is first
    assert built == [0]
    for n in range(1, paging.MAX_PREPARED + 1):
        paging.prepared(("test", n), object)
    assert len(paging._PREPARED) <= paging.MAX_PREPARED
    assert paging.prepared(("test", 0), lambda: build(0)) is not first  # forgotten, built again
