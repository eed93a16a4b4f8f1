"""Downloads against a local HTTP server on 127.0.0.1: verification, corrupt and offline cases, safe extraction."""

from __future__ import annotations

import dataclasses
import io
import tarfile

import numpy as np
import pytest
import torch

from vqgen.data import (
    ChecksumError,
    DatasetNotFoundError,
    DownloadError,
    download_file,
    extract_tar,
    load_dataset,
    specs,
    verify_file,
)
from vqgen.data import download as download_module


def test_download_file_verifies_and_renames_atomically(http_server, tmp_path, helpers):
    body = bytes(range(256)) * 100
    url = http_server.serve("blob.bin", body)
    target = download_file(url, tmp_path / "sub" / "blob.bin", sha256=helpers.sha256(body), progress=False)
    assert target.read_bytes() == body
    assert sorted(p.name for p in target.parent.iterdir()) == ["blob.bin"]  # no .part file left behind


def test_download_file_tries_mirrors_in_order(http_server, closed_port_url, tmp_path, helpers):
    body = b"mirror two"
    url = http_server.serve("m.bin", body)
    download_file([closed_port_url + "m.bin", url], tmp_path / "m.bin", sha256=helpers.sha256(body), progress=False)
    assert (tmp_path / "m.bin").read_bytes() == body


def test_corrupt_download_is_rejected_and_nothing_is_saved(http_server, tmp_path, helpers):
    good, served = b"the official bytes", b"the official byteZ"
    url = http_server.serve("data.gz", served)
    with pytest.raises(ChecksumError) as info:
        download_file(url, tmp_path / "data.gz", sha256=helpers.sha256(good), progress=False)
    message = str(info.value)
    assert "data.gz" in message and helpers.sha256(good) in message and helpers.sha256(served) in message
    assert list(tmp_path.iterdir()) == []


def test_download_requires_a_checksum(tmp_path):
    with pytest.raises(ValueError, match="sha256 or md5"):
        download_file("http://127.0.0.1:9/x", tmp_path / "x")


def test_unreachable_url_raises_download_error(closed_port_url, tmp_path):
    with pytest.raises(DownloadError, match="x.bin"):
        download_file(closed_port_url + "x.bin", tmp_path / "x.bin", sha256="0" * 64, progress=False)


def test_http_404_raises_download_error(http_server, tmp_path):
    with pytest.raises(DownloadError, match="404"):
        download_file(http_server.url("missing.bin"), tmp_path / "missing.bin", sha256="0" * 64, progress=False)


def test_load_dataset_downloads_verifies_and_parses(fake_mnist, http_server, tmp_path):
    arrays, _ = fake_mnist
    train = load_dataset("mnist", split="train", root=tmp_path, download=True)
    assert train.images.shape == (6, 1, 28, 28) and train.images.dtype == torch.uint8
    assert torch.equal(train.images[:, 0], torch.from_numpy(arrays["train-images-idx3-ubyte.gz"]))
    assert train.labels.tolist() == [0, 1, 2, 3, 4, 9]
    assert sorted(p.name for p in (tmp_path / "mnist").iterdir()) == [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
    ]  # only the requested split is fetched
    count = len(http_server.requests)
    again = load_dataset("mnist", split="train", root=tmp_path, download=True)  # present: no new request
    assert len(http_server.requests) == count and torch.equal(again.images, train.images)


def test_corrupt_download_through_load_dataset(fake_mnist, http_server, tmp_path, helpers):
    _, bodies = fake_mnist
    http_server.serve("t10k-labels-idx1-ubyte.gz", bodies["t10k-labels-idx1-ubyte.gz"][:-3])  # truncated
    with pytest.raises(ChecksumError) as info:
        load_dataset("mnist", split="test", root=tmp_path, download=True)
    assert "t10k-labels-idx1-ubyte.gz" in str(info.value)
    assert helpers.sha256(bodies["t10k-labels-idx1-ubyte.gz"]) in str(info.value)
    assert not (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").exists()


def test_offline_error_says_where_to_put_the_files(monkeypatch, closed_port_url, tmp_path):
    spec = specs.DATASETS["mnist"]
    splits = {
        split: tuple(dataclasses.replace(f, urls=(closed_port_url + f.name,)) for f in files)
        for split, files in spec.splits.items()
    }
    monkeypatch.setitem(specs.DATASETS, "mnist", dataclasses.replace(spec, splits=splits))
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("mnist", split="train", root=tmp_path, download=True)
    message = str(info.value)
    assert str(tmp_path / "mnist") in message and "offline" in message
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz"):
        assert name in message
    assert isinstance(info.value, FileNotFoundError)  # the CLI reports it as a user error


def test_missing_files_without_download(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("fashion-mnist", split="test", root=tmp_path)
    message = str(info.value)
    assert str(tmp_path / "fashion-mnist") in message and "t10k-images-idx3-ubyte.gz" in message
    assert "download=True" in message


def test_corrupt_local_file_names_expected_and_actual(fake_mnist, tmp_path, helpers):
    _, bodies = fake_mnist
    load_dataset("mnist", split="test", root=tmp_path, download=True)
    path = tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz"
    corrupt = bytearray(bodies["t10k-images-idx3-ubyte.gz"])
    corrupt[100] ^= 0xFF
    path.write_bytes(bytes(corrupt))
    with pytest.raises(ChecksumError) as info:
        load_dataset("mnist", split="test", root=tmp_path)
    message = str(info.value)
    assert str(path) in message
    assert helpers.sha256(bodies["t10k-images-idx3-ubyte.gz"]) in message and helpers.sha256(bytes(corrupt)) in message


def test_verification_is_cached_per_process(tmp_path, monkeypatch, helpers):
    path = helpers.write(tmp_path / "f.bin", b"abc" * 1000)
    digest = helpers.sha256(path.read_bytes())
    calls = []
    real = download_module.file_digest
    monkeypatch.setattr(download_module, "file_digest", lambda p, a="sha256": calls.append(p) or real(p, a))
    verify_file(path, digest)
    verify_file(path, digest)
    assert len(calls) == 1
    path.write_bytes(b"abd" * 1000)  # changed content (and mtime): verified again, and rejected
    with pytest.raises(ChecksumError):
        verify_file(path, digest)


def _tar(members: dict[str, bytes], *, link: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if link:
            info = tarfile.TarInfo(link)
            info.type = tarfile.SYMTYPE
            info.linkname = "/etc/passwd"
            tar.addfile(info)
    return buffer.getvalue()


def test_extract_tar_extracts_wanted_members(tmp_path, helpers):
    archive = helpers.write(tmp_path / "a.tar.gz", _tar({"d/one.bin": b"1", "d/two.bin": b"22"}))
    out = extract_tar(archive, tmp_path / "out", members=["d/two.bin"])
    assert out == [tmp_path / "out" / "d" / "two.bin"] and out[0].read_bytes() == b"22"
    assert not (tmp_path / "out" / "d" / "one.bin").exists()
    with pytest.raises(ValueError, match="lacks"):
        extract_tar(archive, tmp_path / "out", members=["d/three.bin"])


@pytest.mark.parametrize("bad", ["../evil.bin", "/abs/evil.bin", "d/../../evil.bin"])
def test_extract_tar_rejects_path_traversal(tmp_path, helpers, bad):
    archive = helpers.write(tmp_path / "a.tar.gz", _tar({"ok.bin": b"x", bad: b"evil"}))
    with pytest.raises(ValueError, match="unsafe path"):
        extract_tar(archive, tmp_path / "out")
    assert not (tmp_path / "evil.bin").exists()


def test_extract_tar_rejects_links(tmp_path, helpers):
    archive = helpers.write(tmp_path / "a.tar.gz", _tar({"ok.bin": b"x"}, link="d/link"))
    with pytest.raises(ValueError, match="link"):
        extract_tar(archive, tmp_path / "out")


def test_cifar10_download_extracts_the_official_layout(http_server, monkeypatch, tmp_path):
    """The full CIFAR-10 path: tarball (MD5-verified) → cifar10/cifar-10-batches-bin/*.bin, archive removed."""
    import hashlib

    from vqgen.data import cifar

    rng = np.random.default_rng(1)
    records = {}
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        recs = rng.integers(0, 256, (2, 3073), dtype=np.uint8)
        recs[:, 0] = rng.integers(0, 10, 2)
        records[f"cifar-10-batches-bin/{name}"] = recs.tobytes()
    tarball = _tar({**records, "cifar-10-batches-bin/readme.html": b"<html>"})
    url = http_server.serve("cifar-10-binary.tar.gz", tarball)
    archive = dataclasses.replace(cifar.CIFAR10_ARCHIVE, urls=(url,), md5=hashlib.md5(tarball).hexdigest())
    monkeypatch.setattr(cifar, "CIFAR10_ARCHIVE", archive)
    spec = specs.DATASETS["cifar10"]
    small = {s: tuple(dataclasses.replace(f, size=2 * 3073) for f in fs) for s, fs in spec.splits.items()}
    monkeypatch.setitem(specs.DATASETS, "cifar10", dataclasses.replace(spec, splits=small))

    test = load_dataset("cifar10", split="test", root=tmp_path, download=True)
    assert test.name == "cifar10" and "cifar-10-batches-bin" in test.source
    assert test.images.shape == (2, 3, 32, 32)
    raw = np.frombuffer(records["cifar-10-batches-bin/test_batch.bin"], np.uint8).reshape(2, 3073)
    assert test.labels.tolist() == raw[:, 0].tolist()
    assert torch.equal(test.images[1, 2].flatten(), torch.from_numpy(raw[1, 1 + 2048 :].copy()))  # blue plane
    folder = tmp_path / "cifar10" / "cifar-10-batches-bin"
    assert sorted(p.name for p in folder.iterdir()) == sorted(n.split("/")[1] for n in records)
    assert not (tmp_path / "cifar10" / "cifar-10-binary.tar.gz").exists()
    assert len(load_dataset("cifar10", split="train", root=tmp_path)) == 10


def test_cifar10_offline_error(monkeypatch, closed_port_url, tmp_path):
    from vqgen.data import cifar

    archive = dataclasses.replace(cifar.CIFAR10_ARCHIVE, urls=(closed_port_url + "cifar-10-binary.tar.gz",))
    monkeypatch.setattr(cifar, "CIFAR10_ARCHIVE", archive)
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("cifar10", root=tmp_path, download=True)
    message = str(info.value)
    assert str(tmp_path / "cifar10") in message and "data_batch_1.bin" in message and "test_batch.bin" in message


def test_subset_cannot_be_downloaded(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="cannot be downloaded") as info:
        load_dataset("cifar10-subset", split="test", root=tmp_path, download=True)
    assert str(tmp_path / "cifar10-subset") in str(info.value) and "test_batch_first1000.bin" in str(info.value)
