"""The streaming image-folder dataset: same items as the in-memory loader, lazy decoding, workers, bad files."""

from __future__ import annotations

import logging
import pickle

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from vqgen.data import ImageDataset, ImageFolderDataset, load_dataset, load_image_folder


def _png(path, array, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode=mode).save(path)
    return path


@pytest.fixture
def folder(tmp_path):
    """Six random 6x5 greyscale PNGs in two classes (sorted: apple = 0, zebra = 1)."""
    rng = np.random.default_rng(0)
    for cls, count in [("zebra", 2), ("apple", 4)]:
        for i in range(count):
            _png(tmp_path / "imgs" / cls / f"{i}.png", rng.integers(0, 256, (6, 5), dtype=np.uint8))
    return tmp_path / "imgs"


def _items(dataset):
    return [dataset[i] for i in range(len(dataset))]


def test_items_equal_the_in_memory_loader(folder):
    memory = load_image_folder(folder)
    stream = ImageFolderDataset(folder)
    assert len(stream) == len(memory) == 6 and stream.image_shape == memory.image_shape == (1, 6, 5)
    assert stream.class_names == memory.class_names and stream.num_classes == 2 and stream.split is None
    assert torch.equal(stream.labels, memory.labels)
    for (image, label), (expected, expected_label) in zip(_items(stream), _items(memory)):
        assert image.dtype == torch.uint8 and torch.equal(image, expected) and label == expected_label
    assert stream[-1][1] == 1 and [p.name for p in stream.files[:2]] == ["0.png", "1.png"]
    with pytest.raises(IndexError, match="out of range"):
        stream[6]


def test_load_dataset_stream_option(folder, tmp_path):
    data = load_dataset(folder, stream=True, size=4, mode="RGB")
    assert isinstance(data, ImageFolderDataset) and data.image_shape == (3, 4, 4)
    assert isinstance(load_dataset(folder), ImageDataset)
    with pytest.raises(ValueError, match="stream=True reads a folder"):
        load_dataset("digits", stream=True)
    with pytest.raises(TypeError, match="hflip .* pass stream=True"):
        load_dataset(folder, hflip=0.5)
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['resize'\].*hflip"):
        load_dataset(folder, stream=True, resize="nearest")


def test_decodes_lazily(folder):
    """With size and mode given, construction opens no image: a file broken afterwards fails only when read."""
    data = ImageFolderDataset(folder, size=6, mode="L")
    (folder / "apple" / "1.png").write_bytes(b"broken")
    assert data[0][0].shape == (1, 6, 6)
    with pytest.raises(ValueError, match=r"apple/1\.png is not an image"):
        data[1]


def test_size_resizes_the_shorter_side_and_crops_the_centre(tmp_path):
    wide = np.zeros((4, 8), np.uint8)
    wide[:, 2:6], wide[:, 6:] = 100, 200  # columns: 2 x 0, 4 x 100, 2 x 200
    _png(tmp_path / "f" / "c" / "wide.png", wide)
    _png(tmp_path / "f" / "c" / "big.png", np.full((12, 20), 9, np.uint8))
    data = ImageFolderDataset(tmp_path / "f", size=4)
    assert data.image_shape == (1, 4, 4)
    assert torch.equal(data[1][0], torch.full((1, 4, 4), 100, dtype=torch.uint8))  # the centre 4x4 of wide.png
    assert torch.equal(data[0][0], torch.full((1, 4, 4), 9, dtype=torch.uint8))
    assert ImageFolderDataset(tmp_path / "f", size=(2, 3))[1][0].shape == (1, 2, 3)
    assert torch.equal(load_image_folder(tmp_path / "f", size=4).images[1], data[1][0])  # one resize for both


def test_mode_rgb_and_grey(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 255
    _png(tmp_path / "a" / "x.png", rgba, "RGBA")
    _png(tmp_path / "a" / "y.png", np.full((4, 4), 7, np.uint8))
    auto = ImageFolderDataset(tmp_path / "a")  # greyscale beside colour: RGB, like load_image_folder
    assert auto.image_shape == (3, 4, 4) and auto[0][0][:, 0, 0].tolist() == [200, 0, 0]
    assert auto[1][0][:, 0, 0].tolist() == [7, 7, 7]
    grey = ImageFolderDataset(tmp_path / "a", mode="L")
    assert grey.image_shape == (1, 4, 4) and grey[1][0].shape == (1, 4, 4) and int(grey[1][0][0, 0, 0]) == 7


def test_hflip(folder):
    plain = ImageFolderDataset(folder)
    flipped = ImageFolderDataset(folder, hflip=1.0)
    assert torch.equal(flipped[0][0], plain[0][0].flip(-1))
    half = ImageFolderDataset(folder, hflip=0.5)
    torch.manual_seed(0)
    first = [half[i][0] for i in range(6)] * 4
    torch.manual_seed(0)
    again = [half[i][0] for i in range(6)] * 4
    assert all(torch.equal(a, b) for a, b in zip(first, again))  # reproducible from the seed
    torch.manual_seed(1)
    draws = [torch.equal(half[0][0], plain[0][0]) for _ in range(40)]
    assert 0 < sum(draws) < 40  # both outcomes occur
    for bad in (-0.1, 1.5, "yes", True):
        with pytest.raises(ValueError, match="hflip must be a probability"):
            ImageFolderDataset(folder, hflip=bad)


def _epoch(loader):
    return [(images.clone(), labels.clone()) for images, labels in loader]


def test_dataloader_with_two_workers(folder):
    data = ImageFolderDataset(folder, hflip=0.5)
    assert len(pickle.dumps(data)) < 2_000  # the file list travels as two small arrays
    loader = DataLoader(data, batch_size=4, shuffle=True, num_workers=2)
    torch.manual_seed(0)
    first = _epoch(loader)
    torch.manual_seed(0)
    again = _epoch(loader)
    images = torch.cat([x for x, _ in first])
    assert images.shape == (6, 1, 6, 5) and images.dtype == torch.uint8
    assert sorted(torch.cat([y for _, y in first]).tolist()) == [0, 0, 0, 0, 1, 1]
    assert all(torch.equal(a, b) and torch.equal(c, d) for (a, c), (b, d) in zip(first, again))
    plain = torch.stack([ImageFolderDataset(folder)[i][0] for i in range(6)])
    matches = [(plain == x).all((1, 2, 3)).any() or (plain.flip(-1) == x).all((1, 2, 3)).any() for x in images]
    assert all(matches)  # every streamed image is one of the files, flipped or not


def test_mixed_sizes_without_size_is_an_error_naming_the_file(tmp_path):
    _png(tmp_path / "f" / "c" / "a.png", np.zeros((4, 4), np.uint8))
    _png(tmp_path / "f" / "c" / "b.png", np.zeros((8, 6), np.uint8))
    with pytest.raises(ValueError, match=r"b\.png is 6x8 .* first image is 4x4.*pass size="):
        ImageFolderDataset(tmp_path / "f")
    assert ImageFolderDataset(tmp_path / "f", size=4)[1][0].shape == (1, 4, 4)


def test_mixed_sizes_appearing_after_construction_name_the_file(folder):
    data = ImageFolderDataset(folder)
    _png(folder / "zebra" / "0.png", np.zeros((3, 3), np.uint8))
    with pytest.raises(ValueError, match=r"zebra/0\.png is 3x3 .* first image is 5x6"):
        data[4]


def test_corrupt_file_is_an_error_naming_it_or_skipped_with_a_warning(folder, caplog):
    (folder / "apple" / "2.png").write_bytes(b"\x89PNG truncated")
    with pytest.raises(ValueError, match=r"apple/2\.png is not an image Pillow can read"):
        ImageFolderDataset(folder)
    with caplog.at_level(logging.WARNING, logger="vqgen.data"):
        data = ImageFolderDataset(folder, skip_invalid=True)
    assert len(data) == 5 and "2.png" in caplog.text
    assert "2.png" not in {p.name for p in data.files[:3]}


def test_file_corrupted_after_construction_is_replaced_when_skipping(folder, caplog):
    data = ImageFolderDataset(folder, size=6, mode="L", skip_invalid=True)
    expected = data[2]
    (folder / "apple" / "1.png").write_bytes(b"broken")
    with caplog.at_level(logging.WARNING, logger="vqgen.data"):
        image, label = data[1]
    assert torch.equal(image, expected[0]) and label == expected[1]  # the next readable image stands in
    assert "apple/1.png" in caplog.text and len(data) == 6


def test_bad_arguments(folder, tmp_path):
    with pytest.raises(FileNotFoundError, match="no such folder"):
        ImageFolderDataset(tmp_path / "missing")
    with pytest.raises(ValueError, match="mode must be one of"):
        ImageFolderDataset(folder, mode="CMYK")
    with pytest.raises(ValueError, match="size must be a positive int"):
        ImageFolderDataset(folder, size=(0, 3))
    with pytest.raises(ValueError, match="no test split"):
        ImageFolderDataset(folder, split="test")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images"):
        ImageFolderDataset(tmp_path / "empty", size=4, mode="L")


def test_a_corrupt_file_read_in_a_worker_is_reported_by_name(folder):
    data = ImageFolderDataset(folder, size=6, mode="L")
    (folder / "zebra" / "1.png").write_bytes(b"broken")
    with pytest.raises(ValueError, match=r"zebra/1\.png is not an image Pillow can read"):
        list(DataLoader(data, batch_size=2, num_workers=2))
