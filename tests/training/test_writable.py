"""An output folder that cannot be written is a one-line error before the first training step, not after an epoch."""

from __future__ import annotations

import os
import stat

import pytest
import torch

import vqgen
from vqgen.cli import main
from vqgen.training import fit_vqvae, writable
from vqgen.training.writable import check_writable

TINY = {"hidden_channels": 8, "residual_channels": 4, "num_downsamples": 1, "latent_dim": 4}


def _model() -> vqgen.VQVAE:
    torch.manual_seed(0)
    return vqgen.build(
        "model", "vqvae", encoder=vqgen.build("encoder", "conv", in_channels=1, **TINY),
        quantizer=vqgen.build("quantizer", "vq", num_codes=8, dim=4),
        decoder=vqgen.build("decoder", "conv", out_channels=1, **TINY),
    )  # fmt: skip


@pytest.fixture
def read_only(tmp_path, monkeypatch):
    """A folder chmod 0o500; where that does not stop writes (root), writing in it raises PermissionError anyway."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    if os.access(folder, os.W_OK):  # root writes anyway: make the probe meet the error a read-only folder gives

        def refuse(*args, **kwargs):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(writable.tempfile, "mkstemp", refuse)
    yield folder
    folder.chmod(stat.S_IRWXU)


def test_a_writable_folder_is_created_and_left_clean(tmp_path):
    assert check_writable(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert (tmp_path / "a" / "b").is_dir() and not any((tmp_path / "a" / "b").iterdir())
    assert check_writable(None) is None


def test_a_read_only_folder_fails_before_the_first_step(read_only):
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    steps = []
    model.register_forward_hook(lambda *args: steps.append(1))
    with pytest.raises(PermissionError, match=r"checkpoint_dir .*read-only/run is not a writable folder \(Permission"):
        fit_vqvae(model, torch.zeros(8, 1, 8, 8, dtype=torch.uint8), epochs=1, checkpoint_dir=read_only / "run",
                  progress=False)  # fmt: skip
    with pytest.raises(PermissionError, match="is not a writable folder"):
        check_writable(read_only)
    assert not steps and all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_a_path_under_a_file_fails_at_once(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(
        NotADirectoryError, match=r"checkpoint_dir .*file/run is not a writable folder: .*file is a file"
    ):
        fit_vqvae(_model(), torch.zeros(8, 1, 8, 8, dtype=torch.uint8), checkpoint_dir=tmp_path / "file" / "run")
    with pytest.raises(NotADirectoryError, match="file is a file"):
        check_writable(tmp_path / "file")


def test_fit_says_so_in_one_line_before_reading_the_data(read_only, tmp_path, capsys, monkeypatch):
    import vqgen.data

    def no_data(*args, **kwargs):
        raise AssertionError("the data was loaded before the output folder was checked")

    monkeypatch.setattr(vqgen.data, "load_dataset", no_data)
    assert main(["fit", "--dataset", "digits", "--output", str(read_only)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("vqgen fit: error: --output ") and "is not a writable folder" in err
    assert len(err.strip().splitlines()) == 1
