"""PNG grids: sizes, tile placement, grey and colour, originals above reconstructions, label strips, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from vqgen.images import (
    MIN_WIDTH,
    auto_scale,
    label_grid,
    make_grid,
    make_panels,
    save_grid,
    save_panels,
    save_reconstructions,
    to_uint8,
)


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
    path = save_reconstructions(
        tmp_path / "r.png", originals, reconstructions, ncols=3, padding=1, pad_value=128, scale=1
    )
    labelled = np.asarray(Image.open(path))
    grid = labelled[:, labelled.shape[1] - (3 * 4 + 1) :]  # the tiles, right of the row labels
    assert grid.shape == (4 * 4 + 1, 3 * 4 + 1)  # 2 rows of originals, each above a row of reconstructions
    tile = lambda r, c: grid[1 + 4 * r : 4 + 4 * r, 1 + 4 * c : 4 + 4 * c]  # noqa: E731
    assert (tile(0, 0) == 0).all() and (tile(1, 0) == 255).all()
    assert (tile(2, 1) == 0).all() and (tile(3, 1) == 255).all()
    assert (tile(2, 2) == 128).all() and (tile(3, 2) == 128).all()  # blank cells after image 4


def test_several_reconstruction_rows(tmp_path):
    x = torch.rand(4, 3, 2, 2)
    path = save_reconstructions(tmp_path / "r.png", x, [x, 1 - x], ncols=4, padding=0, scale=1)
    labelled = np.asarray(Image.open(path))
    grid = labelled[:, -8:]
    assert grid.shape == (6, 8, 3) and labelled.shape[0] == 6
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


def _ink(strip: np.ndarray) -> int:
    """Number of pixels in a label strip that are not the white background."""
    return int((strip < 255).any(axis=-1).sum() if strip.ndim == 3 else (strip < 255).sum())


@pytest.mark.parametrize("channels", [1, 3])
def test_title_strip_above_unchanged_tiles(tmp_path, channels):
    images = torch.randint(0, 256, (6, channels, 28, 28), dtype=torch.uint8)
    plain = np.asarray(Image.open(save_grid(tmp_path / "plain.png", images, ncols=3, scale=2)))
    titled = np.asarray(Image.open(save_grid(tmp_path / "titled.png", images, ncols=3, scale=2, title="prior samples")))
    strip = titled.shape[0] - plain.shape[0]
    assert strip > 10 and titled.shape[1:] == plain.shape[1:]  # grows by a strip, as wide as the grid
    assert _ink(titled[:strip]) > 20  # the title is drawn
    np.testing.assert_array_equal(titled[strip:], plain)  # data pixels untouched
    tile = images[4].permute(1, 2, 0).numpy().repeat(2, axis=0).repeat(2, axis=1)
    tile = tile[..., 0] if channels == 1 else tile
    top, left = strip + 2 * (2 + 30), 2 * (2 + 30)  # image 4: row 1, column 1, padding 2, scale 2
    np.testing.assert_array_equal(titled[top : top + 56, left : left + 56], tile)


def test_row_labels_and_captions(tmp_path):
    images = torch.zeros(4, 1, 8, 8, dtype=torch.uint8) + 100
    bare = make_grid(images, ncols=2)
    labelled = label_grid(bare, tile_shape=(8, 8), scale=3, row_labels=["zero", "one"])
    column = labelled.shape[1] - bare.shape[1] * 3
    assert column > 20 and labelled.shape[0] == bare.shape[0] * 3
    assert _ink(labelled[: 3 * 12, :column]) > 10 and _ink(labelled[3 * 12 :, :column]) > 10  # a label per row
    np.testing.assert_array_equal(labelled[:, column:], bare.repeat(3, axis=0).repeat(3, axis=1))
    captioned = label_grid(bare, tile_shape=(8, 8), scale=3, captions=["a", "b", "c", "d"], ncols=2)
    extra = captioned.shape[0] - bare.shape[0] * 3
    assert extra > 0 and extra % 2 == 0  # one caption strip under each of the 2 rows of tiles
    strip = extra // 2
    # row 0 of tiles at 6..30, its captions below, row 1 shifted down by one strip
    assert (captioned[6:30, 6:30] == 100).all() and _ink(captioned[30 : 30 + strip, 6:30]) > 0
    assert (captioned[6 + 30 + strip : 30 + 30 + strip, 6:30] == 100).all()
    long = label_grid(bare, tile_shape=(8, 8), scale=3, captions=["automobile" * 3] * 4, ncols=2, padding=2)
    assert _ink(long[30 : 30 + strip, 30:36]) == 0  # a long caption is cut at its tile's edge, not spilled over
    with pytest.raises(ValueError, match="row_labels must have one label per row of tiles \\(2\\), got 1"):
        label_grid(bare, tile_shape=(8, 8), row_labels=["x"])
    with pytest.raises(ValueError, match="captions need ncols"):
        label_grid(bare, tile_shape=(8, 8), captions=["x"])


def test_reconstruction_rows_are_labelled(tmp_path):
    x = torch.rand(3, 1, 6, 6)
    labelled = np.asarray(Image.open(save_reconstructions(tmp_path / "r.png", x, 1 - x, scale=4, padding=0)))
    column = labelled.shape[1] - 3 * 6 * 4
    assert _ink(labelled[:24, :column]) > 10 and _ink(labelled[24:, :column]) > 10  # "originals", "reconstructions"
    np.testing.assert_array_equal(labelled[:24, column:], to_uint8(x).numpy()[:, 0].transpose(1, 0, 2).reshape(6, 18)
                                  .repeat(4, axis=0).repeat(4, axis=1))  # fmt: skip
    with pytest.raises(ValueError, match="labels must name the originals and each of the 1"):
        save_reconstructions(tmp_path / "r.png", x, 1 - x, labels=["only one"])


def test_default_scale_makes_small_grids_readable(tmp_path):
    assert auto_scale(8 * 30 + 2) == 2 and auto_scale(8 * 10 + 2) == 5 and auto_scale(1000) == 1
    assert auto_scale(1) == 8  # capped
    with Image.open(save_grid(tmp_path / "g.png", torch.rand(16, 1, 28, 28))) as image:
        assert image.size[0] >= MIN_WIDTH
    with Image.open(save_grid(tmp_path / "d.png", torch.rand(16, 1, 8, 8))) as image:
        assert image.size[0] >= MIN_WIDTH


def test_panels_side_by_side_with_titles(tmp_path):
    a, b = torch.zeros(8, 3, 5, 5), torch.full((16, 3, 5, 5), 0.5)
    panels = make_panels({"prior samples": a, "uniform codes": b}, ncols=8, scale=2, gap=6)
    single_a = make_grid(a, ncols=8).repeat(2, axis=0).repeat(2, axis=1)
    single_b = make_grid(b, ncols=8).repeat(2, axis=0).repeat(2, axis=1)
    assert panels.shape[1] >= single_a.shape[1] + 6 + single_b.shape[1]
    strip = panels.shape[0] - single_b.shape[0]
    assert strip > 10 and _ink(panels[:strip, : single_a.shape[1]]) > 20
    np.testing.assert_array_equal(panels[strip : strip + single_a.shape[0], : single_a.shape[1]], single_a)
    right = panels.shape[1] - single_b.shape[1]
    np.testing.assert_array_equal(panels[strip:, right:], single_b)
    assert save_panels(tmp_path / "p.png", {"x": a}).exists()
    with pytest.raises(ValueError, match="panels is empty"):
        make_panels({})
