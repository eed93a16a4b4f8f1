"""Image folders: PNGs written by the test, class labels from sorted sub-folder names, non-image files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from vqgen.data import load_dataset, load_image_folder


def _png(path, array, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode=mode).save(path)
    return path


@pytest.fixture
def grey_folder(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {}
    for cls, count in [("zebra", 2), ("apple", 3)]:  # sorted: apple = 0, zebra = 1
        for i in range(count):
            arrays[(cls, i)] = rng.integers(0, 256, (6, 5), dtype=np.uint8)
            _png(tmp_path / "imgs" / cls / f"{i}.png", arrays[(cls, i)])
    return tmp_path / "imgs", arrays


def test_folder_labels_from_sorted_subfolders(grey_folder):
    folder, arrays = grey_folder
    data = load_dataset(folder)
    assert data.class_names == ("apple", "zebra") and data.num_classes == 2
    assert data.images.shape == (5, 1, 6, 5) and data.images.dtype == torch.uint8
    assert data.labels.tolist() == [0, 0, 0, 1, 1]
    assert torch.equal(data.images[3, 0], torch.from_numpy(arrays[("zebra", 0)]))
    assert data.split is None and len(load_dataset(folder, split=None)) == 5


def test_non_image_file_is_an_error_naming_it(grey_folder):
    folder, _ = grey_folder
    (folder / "apple" / "notes.txt").write_text("not an image")
    with pytest.raises(ValueError, match=r"notes\.txt is not an image"):
        load_dataset(folder)
    data = load_image_folder(folder, skip_invalid=True)
    assert len(data) == 5
    (folder / "apple" / ".DS_Store").write_bytes(b"\0\1")  # hidden files are ignored silently
    assert len(load_image_folder(folder, skip_invalid=True)) == 5


def test_loose_file_beside_class_folders(grey_folder):
    folder, _ = grey_folder
    (folder / "README.md").write_text("hi")
    with pytest.raises(ValueError, match=r"README\.md is not inside a class sub-folder"):
        load_image_folder(folder)
    assert len(load_image_folder(folder, skip_invalid=True)) == 5


def test_rgb_mode_and_alpha(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 255
    _png(tmp_path / "a" / "x.png", rgba, "RGBA")
    _png(tmp_path / "a" / "y.png", np.full((4, 4), 7, np.uint8))  # greyscale beside colour → all RGB
    data = load_image_folder(tmp_path / "a")
    assert data.images.shape == (2, 3, 4, 4) and data.class_names == ("a",)
    assert data.images[0, :, 0, 0].tolist() == [200, 0, 0] and data.images[1, :, 0, 0].tolist() == [7, 7, 7]
    assert load_image_folder(tmp_path / "a", mode="L").images.shape == (2, 1, 4, 4)


def test_size_mismatch_and_resize(tmp_path):
    _png(tmp_path / "f" / "c" / "a.png", np.zeros((4, 4), np.uint8))
    _png(tmp_path / "f" / "c" / "b.png", np.zeros((8, 6), np.uint8))
    with pytest.raises(ValueError, match=r"b\.png is 6x8 .* first image is 4x4.*size="):
        load_image_folder(tmp_path / "f")
    assert load_image_folder(tmp_path / "f", size=(3, 5)).images.shape == (2, 1, 3, 5)


def test_train_test_subfolders(grey_folder, tmp_path):
    folder, _ = grey_folder
    with pytest.raises(ValueError, match="no test split"):
        load_dataset(folder, split="test")
    split_root = tmp_path / "split"
    for split, n in [("train", 3), ("test", 2)]:
        for i in range(n):
            _png(split_root / split / ("b" if i % 2 else "a") / f"{i}.png", np.full((2, 2), i, np.uint8))
    train, test = load_dataset(split_root, "train"), load_dataset(split_root, "test")
    assert len(train) == 3 and len(test) == 2 and test.split == "test" and test.class_names == ("a", "b")


def test_folder_errors(tmp_path):
    with pytest.raises(ValueError, match="no images"):
        load_image_folder(tmp_path)
    with pytest.raises(ValueError, match="mode"):
        load_image_folder(tmp_path, mode="CMYK")
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['resize'\].*skip_invalid"):
        load_dataset(tmp_path, resize="nearest")
