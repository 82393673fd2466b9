"""The image unit of Task 3: which pixels of a slice form one probing image."""

from __future__ import annotations

from collections.abc import Iterator


def tiles(height: int, width: int, tile_size: int | None) -> Iterator[tuple[int, int, int, int]]:
    """Image units of one ``height x width`` slice as ``(y0, x0, tile_h, tile_w)``.

    ``tile_size`` None: the whole slice is one image. An integer: non-overlapping
    ``tile_size x tile_size`` tiles in row-major order (e.g. 128 gives the reference code's four
    quadrants of a 256x256 slice); it must divide both sides.
    """
    if tile_size is None:
        yield 0, 0, height, width
        return
    size = int(tile_size)
    if size <= 0 or height % size or width % size:
        raise ValueError(
            f"Parameter 'probing.images.tile_size' = {tile_size} must divide the slice size {height}x{width} "
            "(or be null for whole slices)."
        )
    for y0 in range(0, height, size):
        for x0 in range(0, width, size):
            yield y0, x0, size, size
