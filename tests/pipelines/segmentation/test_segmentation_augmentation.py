"""Task 2 augmentation: NumPy views equal to MONAI's dictionary transforms and to the former numpy
code, for the same draws."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from monai.transforms import Compose, Flipd, Rotate90d

from mtneuro.pipelines.segmentation.engine import AugmentDraws, apply_augmentation, augment, draw_augmentation


def numpy_augment(image, labels, draws: list[int], k: int, flip: bool, rot90: bool, flip_z: bool):
    """The project's augmentation before MONAI (kept verbatim, draws passed in)."""
    if flip:
        for axis, draw in zip((-1, -2), draws[:2], strict=True):
            if draw:
                image, labels = np.flip(image, axis), np.flip(labels, axis)
        if flip_z and image.ndim == 3 and draws[2]:
            image, labels = np.flip(image, 0), np.flip(labels, 0)
    if rot90 and k and image.shape[-1] == image.shape[-2]:
        image, labels = np.rot90(image, k, axes=(-2, -1)), np.rot90(labels, k, axes=(-2, -1))
    return image, labels


def numpy_augment_drawing(image, labels, flip: bool, rot90: bool, flip_z: bool):
    """The former ``augment``: draws from torch's global generator, then the numpy transforms."""
    draws = torch.randint(0, 2, (3,)).tolist()
    k = int(torch.randint(0, 4, (1,)).item())
    return numpy_augment(image, labels, draws, k, flip, rot90, flip_z)


def monai_augment(image, labels, draws: AugmentDraws, flip: bool, rot90: bool, flip_z: bool):
    """MONAI's dictionary transforms (channel-first) for the same draws: the reference semantics."""
    transforms = []
    if flip:
        axes = [axis for axis, coin in ((-1, draws.flip_x), (-2, draws.flip_y)) if coin]
        if flip_z and image.ndim == 3 and draws.flip_z:
            axes.append(0)
        if axes:
            transforms.append(Flipd(keys=("image", "label"), spatial_axis=axes))
    if rot90 and draws.k and image.shape[-1] == image.shape[-2]:
        transforms.append(Rotate90d(keys=("image", "label"), k=draws.k, spatial_axes=(-2, -1)))
    if not transforms:
        return image, labels
    sample = Compose(transforms)({"image": image[None], "label": labels[None]})
    return np.asarray(sample["image"])[0], np.asarray(sample["label"])[0]


SHAPES = [(6, 6), (6, 5), (3, 6, 6), (3, 5, 6)]  # 2D / 3D, square / not square in-plane


@pytest.mark.parametrize("shape", SHAPES)
def test_every_combination_of_draws_gives_the_numpy_and_monai_result(shape):
    rng = np.random.default_rng(sum(shape))
    image = rng.integers(0, 256, shape, dtype=np.uint8)
    labels = rng.integers(0, 4, shape, dtype=np.uint8)
    outcomes = set()
    for coins in itertools.product((0, 1), repeat=3):
        for k in range(4):
            for flip, rot90, flip_z in itertools.product((False, True), repeat=3):
                expected = numpy_augment(image, labels, list(coins), k, flip, rot90, flip_z)
                got = apply_augmentation(image, labels, AugmentDraws(*coins, k), flip, rot90, flip_z)
                monai = monai_augment(image, labels, AugmentDraws(*coins, k), flip, rot90, flip_z)
                for e, g, m in zip(expected, got, monai, strict=True):
                    np.testing.assert_array_equal(
                        g, m, err_msg=f"MONAI: draws {coins}, k {k}, flags {flip, rot90, flip_z}"
                    )
                    assert isinstance(g, np.ndarray) and g.dtype == np.uint8
                    np.testing.assert_array_equal(g, e, err_msg=f"draws {coins}, k {k}, flags {flip, rot90, flip_z}")
                outcomes.add(got[0].tobytes())
    # the combinations do transform: 2D square 8 symmetries, 3D square 16, non-square 4 / 8
    assert len(outcomes) == {(6, 6): 8, (6, 5): 4, (3, 6, 6): 16, (3, 5, 6): 8}[shape]


def test_draws_come_from_torch_in_the_former_order():
    image = np.arange(4 * 8 * 8, dtype=np.uint8).reshape(4, 8, 8)
    labels = (image % 4).astype(np.uint8)
    torch.manual_seed(7)
    expected = [numpy_augment_drawing(image, labels, True, True, True) for _ in range(30)]
    after_expected = torch.rand(1)
    torch.manual_seed(7)
    got = [augment(image, labels, True, True, True) for _ in range(30)]
    after_got = torch.rand(1)
    for (ei, el), (gi, gl) in zip(expected, got, strict=True):
        np.testing.assert_array_equal(gi, ei)
        np.testing.assert_array_equal(gl, el)
    assert torch.equal(after_got, after_expected)  # the generator advanced exactly as before

    torch.manual_seed(3)
    coins = torch.randint(0, 2, (3,)).tolist()
    k = int(torch.randint(0, 4, (1,)).item())
    torch.manual_seed(3)
    assert draw_augmentation() == AugmentDraws(*coins, k)


def test_disabled_transforms_still_consume_the_draws():
    """Crops drawn after a patch's augmentation must not depend on the augmentation flags."""
    image = np.zeros((8, 8), dtype=np.uint8)
    torch.manual_seed(0)
    augment(image, image, False, False, False)
    after_off = torch.rand(1)
    torch.manual_seed(0)
    augment(image, image, True, True, True)
    assert torch.equal(torch.rand(1), after_off)
