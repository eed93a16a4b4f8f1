"""The real files in $VQGEN_DATA (or ../shared/data): checksums, shapes, label counts, known pixels.

Skipped cleanly when the data is absent (the ``real_data_dir`` fixture).
"""

from __future__ import annotations

import pytest
import torch

from vqgen.data import DATASETS, load_dataset, verify_file

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist", "cifar10-subset"])
def test_checksums_of_real_files(real_data_dir, name):
    spec = DATASETS[name]
    for file in spec.files():
        path = real_data_dir / spec.folder / file.name
        assert file.sha256 and len(file.sha256) == 64
        verify_file(path, file.sha256)  # raises on mismatch
        assert path.stat().st_size == file.size


def test_mnist_shapes_and_class_counts(real_data_dir):
    train = load_dataset("mnist", split="train", root=real_data_dir)
    test = load_dataset("mnist", split="test", root=real_data_dir)
    assert train.images.shape == (60000, 1, 28, 28) and train.images.dtype == torch.uint8
    assert test.images.shape == (10000, 1, 28, 28)
    assert train.labels.dtype == torch.int64 and train.labels.shape == (60000,)
    assert torch.bincount(train.labels, minlength=10).tolist() == MNIST_TRAIN_COUNTS
    assert train.num_classes == 10 and train.image_shape == (1, 28, 28)
    assert abs(train.images.double().mean().item() - 33.318) < 1e-3  # README: 0.1307 x 255
    image, label = train[0]
    assert image.shape == (1, 28, 28) and isinstance(label, int) and label == 5  # the famous first "5"


def test_fashion_mnist_shapes_and_class_counts(real_data_dir):
    train = load_dataset("fashion-mnist", split="train", root=real_data_dir)
    test = load_dataset("fashion-mnist", split="test", root=real_data_dir)
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert torch.bincount(train.labels, minlength=10).tolist() == [6000] * 10
    assert torch.bincount(test.labels, minlength=10).tolist() == [1000] * 10
    assert train.class_names[9] == "Ankle boot"
    assert abs(train.images.double().mean().item() - 72.940) < 1e-3


def test_cifar10_subset_shapes_labels_and_pixels(real_data_dir):
    train = load_dataset("cifar10-subset", split="train", root=real_data_dir)
    test = load_dataset("cifar10-subset", split="test", root=real_data_dir)
    assert train.images.shape == (4000, 3, 32, 32) and test.images.shape == (1000, 3, 32, 32)
    assert train.labels[:10].tolist() == [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]
    assert test.labels[:10].tolist() == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]
    assert train.images[0, 0, 0, :8].tolist() == [59, 43, 50, 68, 98, 119, 139, 145]  # red, row 0
    assert train.images[0, :, 0, 0].tolist() == [59, 62, 63]  # RGB at (0, 0)
    assert test.images[0, 0, 0, :8].tolist() == [158, 159, 165, 166, 160, 156, 162, 159]
    assert test.images[0, :, 0, 0].tolist() == [158, 112, 49]
    means = (train.images.double().mean(dim=(0, 2, 3)) / 255).tolist()
    assert means == pytest.approx([0.492, 0.482, 0.445], abs=1e-3)
    assert train.class_names[6] == "frog" and train.num_classes == 10
    names = (real_data_dir / "cifar10-subset" / "label_names.txt").read_text().split()
    assert tuple(names) == train.class_names


def test_cifar10_falls_back_to_the_subset_and_says_so(real_data_dir, caplog):
    if (real_data_dir / "cifar10").exists():
        pytest.skip("the full CIFAR-10 batches are present here")
    with caplog.at_level("WARNING", logger="vqgen.data"):
        test = load_dataset("cifar10", split="test", root=real_data_dir)
    assert test.name == "cifar10-subset" and len(test) == 1000
    assert "subset" in test.source.lower() and "test_batch_first1000.bin" in test.source
    assert "SUBSET" in caplog.text


def test_root_from_environment(real_data_dir, monkeypatch):
    monkeypatch.setenv("VQGEN_DATA", str(real_data_dir))
    assert len(load_dataset("mnist", split="test")) == 10000
