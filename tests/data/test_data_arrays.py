"""NumPy input: in-memory arrays and .npy/.npz files (never unpickled), with clear validation errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vqgen.data import from_arrays, load_dataset, load_numpy


def test_layouts_are_normalised_to_nchw():
    rng = np.random.default_rng(0)
    hwc = rng.integers(0, 256, (4, 5, 6, 3), dtype=np.uint8)
    data = from_arrays(hwc, np.array([0, 1, 2, 1]))
    assert data.images.shape == (4, 3, 5, 6) and data.image_shape == (3, 5, 6)
    assert torch.equal(data.images[2, 1], torch.from_numpy(hwc[2, :, :, 1]))
    assert data.num_classes == 3 and data.labels.dtype == torch.int64
    assert from_arrays(hwc[..., 0]).images.shape == (4, 1, 5, 6)  # (N, H, W)
    assert from_arrays(np.zeros((2, 1, 7, 7), np.uint8)).images.shape == (2, 1, 7, 7)
    assert from_arrays(torch.zeros(2, 7, 7, 1, dtype=torch.uint8)).images.shape == (2, 1, 7, 7)
    assert from_arrays(np.zeros((2, 3, 4, 3), np.uint8), channels_last=True).images.shape == (2, 3, 3, 4)
    image, label = data[3]
    assert image.shape == (3, 5, 6) and label == 1 and isinstance(label, int)


def test_wrong_dtype_is_a_type_error_with_the_fix():
    with pytest.raises(TypeError, match=r"images must be uint8.*float32.*\* 255"):
        from_arrays(np.zeros((2, 8, 8), np.float32))
    with pytest.raises(TypeError, match="labels must be integers"):
        from_arrays(np.zeros((2, 8, 8), np.uint8), np.zeros(2, np.float32))
    with pytest.raises(TypeError, match="numpy array or torch tensor"):
        from_arrays([[1, 2]])


@pytest.mark.parametrize(
    ("shape", "match"),
    [((8, 8), "must have shape"), ((2, 5, 8, 8, 1), "must have shape"), ((2, 5, 8, 8), "no channel axis"),
     ((0, 8, 8), "non-empty")],
)  # fmt: skip
def test_wrong_shape_is_a_value_error(shape, match):
    with pytest.raises(ValueError, match=match):
        from_arrays(np.zeros(shape, np.uint8))


def test_label_validation():
    with pytest.raises(ValueError, match=r"labels must have shape \(3,\)"):
        from_arrays(np.zeros((3, 4, 4), np.uint8), np.zeros(2, np.int64))
    with pytest.raises(ValueError, match=">= 0"):
        from_arrays(np.zeros((2, 4, 4), np.uint8), np.array([0, -1]))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        from_arrays(np.zeros((2, 4, 4), np.uint8), np.array([0, 2]), class_names=["a", "b"])


def test_npz_with_splits_and_class_names(tmp_path):
    rng = np.random.default_rng(1)
    x_train, x_test = rng.integers(0, 256, (5, 8, 8), dtype=np.uint8), rng.integers(0, 256, (2, 8, 8), dtype=np.uint8)
    path = tmp_path / "d.npz"
    np.savez(
        path, x_train=x_train, y_train=np.arange(5) % 2, x_test=x_test, y_test=np.array([1, 0]),
        class_names=np.array(["cat", "dog"]),
    )  # fmt: skip
    train, test = load_dataset(path, "train"), load_dataset(path, "test")
    assert train.images.shape == (5, 1, 8, 8) and test.labels.tolist() == [1, 0]
    assert torch.equal(test.images[:, 0], torch.from_numpy(x_test))
    assert train.class_names == ("cat", "dog") and "x_train" in train.source
    with pytest.raises(ValueError, match=r"no images for split=None.*x_train"):
        load_numpy(path, split=None)


def test_npy_and_plain_npz(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((3, 4, 4, 3), np.uint8))
    data = load_dataset(tmp_path / "x.npy")
    assert data.images.shape == (3, 3, 4, 4) and data.labels.tolist() == [0, 0, 0]
    with pytest.raises(ValueError, match="no test split"):
        load_dataset(tmp_path / "x.npy", split="test")
    np.savez(tmp_path / "p.npz", images=np.zeros((2, 4, 4), np.uint8), labels=np.array([3, 1]))
    assert load_dataset(str(tmp_path / "p.npz")).labels.tolist() == [3, 1]


def test_pickled_objects_are_refused(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="without pickle"):
        load_numpy(tmp_path / "obj.npy")
