"""The one door load_dataset, root resolution, and the ImageDataset contract."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from vqgen.data import ImageDataset, available_datasets, data_root, load_dataset


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError) as info:
        load_dataset("imagenet")
    for name in ("digits", "mnist", "fashion-mnist", "cifar10", "cifar10-subset"):
        assert name in str(info.value)
    assert set(available_datasets()) >= {"digits", "mnist", "fashion-mnist", "cifar10", "cifar10-subset"}


def test_bad_split_and_type():
    with pytest.raises(ValueError, match="split must be one of"):
        load_dataset("digits", split="valid")
    with pytest.raises(ValueError, match="split must be one of"):
        load_dataset("digits", split=None)
    with pytest.raises(TypeError, match="name_or_path"):
        load_dataset(3)


def test_root_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("VQGEN_DATA", str(tmp_path / "env"))
    assert data_root(tmp_path / "explicit") == tmp_path / "explicit"
    assert data_root() == tmp_path / "env"
    monkeypatch.delenv("VQGEN_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    import sys

    if sys.platform.startswith("linux"):
        assert data_root() == tmp_path / "xdg" / "vqgen"
        monkeypatch.delenv("XDG_CACHE_HOME")
        assert data_root() == Path.home() / ".cache" / "vqgen"


def test_dataset_works_with_a_dataloader():
    data = load_dataset("digits", "test")
    images, labels = next(iter(DataLoader(data, batch_size=8)))
    assert images.shape == (8, 1, 16, 16) and images.dtype == torch.uint8
    assert labels.tolist() == data.labels[:8].tolist()
    assert "digits" in repr(data) and "n=355" in repr(data)


def test_image_dataset_validates_its_tensors():
    with pytest.raises(TypeError, match="uint8"):
        ImageDataset(torch.zeros(2, 1, 4, 4), torch.zeros(2, dtype=torch.int64))
    with pytest.raises(TypeError, match="int64"):
        ImageDataset(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.zeros(3, dtype=torch.int64))
