"""PNG grids: sizes, tile placement, grey and colour, originals above reconstructions, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from vqgen.images import make_grid, save_grid, save_reconstructions, to_uint8


def test_to_uint8():
    x = torch.tensor([-0.5, 0.0, 0.5, 1.0, 2.0])
    assert to_uint8(x).tolist() == [0, 0, 128, 255, 255]
    pixels = torch.tensor([3, 200], dtype=torch.uint8)
    assert to_uint8(pixels) is pixels
    with pytest.raises(ValueError, match="non-finite"):
        to_uint8(torch.tensor([float("nan")]))
    with pytest.raises(TypeError, match="uint8 in"):
        to_uint8(torch.tensor([1, 2]))


@pytest.mark.parametrize("channels", [1, 3])
def test_grid_size_and_tile_placement(channels):
    images = torch.randint(0, 256, (5, channels, 4, 6), dtype=torch.uint8)
    grid = make_grid(images, ncols=3, padding=2, pad_value=7)
    rows, cols = 2, 3
    expected = (rows * (4 + 2) + 2, cols * (6 + 2) + 2) + ((3,) if channels == 3 else ())
    assert grid.shape == expected and grid.dtype == np.uint8
    hwc = images.permute(0, 2, 3, 1).numpy()
    if channels == 1:
        hwc = hwc[..., 0]
    # image 4 is at row 1, column 1
    np.testing.assert_array_equal(grid[2 + 6 : 2 + 6 + 4, 2 + 8 : 2 + 8 + 6], hwc[4])
    np.testing.assert_array_equal(grid[2:6, 2:8], hwc[0])
    assert (grid[:2] == 7).all() and (grid[8:12, 18:24] == 7).all()  # padding and the empty 6th cell


def test_float_images_are_clamped_and_ncols_capped():
    grid = make_grid(torch.tensor([[[[-1.0, 0.5, 2.0]]]]), ncols=8, padding=0)
    assert grid.tolist() == [[0, 128, 255]]


def test_save_grid_writes_a_png(tmp_path):
    path = save_grid(tmp_path / "sub" / "grid.png", torch.rand(6, 3, 5, 5), ncols=2, padding=1, scale=2)
    with Image.open(path) as image:
        assert image.format == "PNG" and image.mode == "RGB"
        assert image.size == (2 * (2 * 6 + 1), 2 * (3 * 6 + 1))


def test_originals_above_reconstructions(tmp_path):
    originals = torch.zeros(5, 1, 3, 3, dtype=torch.uint8)  # black
    reconstructions = torch.ones(5, 1, 3, 3)  # white
    path = save_reconstructions(tmp_path / "r.png", originals, reconstructions, ncols=3, padding=1, pad_value=128)
    grid = np.asarray(Image.open(path))
    assert grid.shape == (4 * 4 + 1, 3 * 4 + 1)  # 2 rows of originals, each above a row of reconstructions
    tile = lambda r, c: grid[1 + 4 * r : 4 + 4 * r, 1 + 4 * c : 4 + 4 * c]  # noqa: E731
    assert (tile(0, 0) == 0).all() and (tile(1, 0) == 255).all()
    assert (tile(2, 1) == 0).all() and (tile(3, 1) == 255).all()
    assert (tile(2, 2) == 128).all() and (tile(3, 2) == 128).all()  # blank cells after image 4


def test_several_reconstruction_rows(tmp_path):
    x = torch.rand(4, 3, 2, 2)
    path = save_reconstructions(tmp_path / "r.png", x, [x, 1 - x], ncols=4, padding=0)
    grid = np.asarray(Image.open(path))
    assert grid.shape == (6, 8, 3)
    np.testing.assert_array_equal(grid[0:2], grid[2:4])


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="1 \\(grey\\) or 3 \\(colour\\) channels"):
        make_grid(torch.rand(2, 2, 4, 4))
    with pytest.raises(ValueError, match="empty"):
        make_grid(torch.rand(0, 1, 4, 4))
    with pytest.raises(ValueError, match="4 dimensions"):
        make_grid(torch.rand(4, 4))
    with pytest.raises(ValueError, match="padding"):
        make_grid(torch.rand(1, 1, 4, 4), padding=-1)
    with pytest.raises(ValueError, match="ncols"):
        make_grid(torch.rand(1, 1, 4, 4), ncols=0)
    with pytest.raises(ValueError, match=r"shape of originals \(2, 1, 4, 4\)"):
        save_reconstructions(tmp_path / "x.png", torch.rand(2, 1, 4, 4), torch.rand(3, 1, 4, 4))
