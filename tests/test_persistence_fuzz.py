"""Damaged checkpoints: flipped, truncated and deleted bytes of ``config.json`` and ``model.safetensors``.

Every damaged checkpoint must either fail with a ``ValueError``/``OSError`` whose message names the damaged file, or
load a model identical to the saved one (same config, same tensors, same outputs) — never another exception, and
never a model that silently differs. The checksums in ``config.json`` are what rules out the last: the same fuzz
on a checkpoint without them (as written before they existed) does produce silently different models, which this
test counts to show that it can see them.

Cases are drawn from fixed seeds; the default run draws a few hundred, ``-m slow`` thousands.
"""

from __future__ import annotations

import json
import pickle
import random
import shutil
import sys
import warnings
from collections import Counter
from pathlib import Path

import pytest
import torch

import vqgen
from vqgen import TwoStageModel
from vqgen.persistence import CONFIG_NAME, WEIGHTS_NAME, CheckpointWarning

FILES = (CONFIG_NAME, WEIGHTS_NAME)


def _tiny(kind: str, name: str, drop: tuple[str, ...] = ()) -> dict:
    config = vqgen.registry(kind).get(name).tiny_config()
    return {"name": name, **{k: v for k, v in config.items() if k not in drop}}


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[Path, dict[str, bytes], tuple[torch.Tensor, ...], dict]:
    """A tiny trained-looking TwoStageModel (nested specs, float, int and bool tensors), its files and outputs."""
    torch.manual_seed(0)
    model = TwoStageModel.from_config(
        {
            "encoder": {**_tiny("encoder", "conv"), "in_channels": 1},
            "quantizer": {**_tiny("quantizer", "ema", drop=("dim",)), "num_codes": 8},
            "prior": _tiny("prior", "gated_pixelcnn", drop=("num_categories", "channels")),
        }
    )
    model.vqvae.quantizer.train()(torch.randn(64, model.vqvae.quantizer.dim))  # move the EMA buffers
    model.fitted_.fill_(True)
    model.image_shape_.copy_(torch.tensor([1, 8, 8]))
    directory = tmp_path_factory.mktemp("fuzz") / "original"
    model.save_pretrained(directory)
    files = {name: (directory / name).read_bytes() for name in FILES}
    reference = vqgen.from_pretrained(directory)
    return directory, files, _outputs(reference), reference.to_spec()


def _outputs(model: TwoStageModel) -> tuple[torch.Tensor, ...]:
    images = torch.linspace(0, 1, 2 * 64).reshape(2, 1, 8, 8)
    with torch.no_grad():
        out = model.vqvae(images)
        logits = model.prior(out.codes[:, None])
        sample = model.prior.sample(2, (4, 4), method="naive", generator=torch.Generator().manual_seed(0))
    state = tuple(t.clone() for t in model.state_dict().values())
    return (out.reconstruction, out.codes, logits, sample, *state)


def _without_checksums(config_bytes: bytes) -> bytes:
    config = json.loads(config_bytes)
    del config["config_sha256"], config["weights_sha256"]
    return (json.dumps(config, indent=2, sort_keys=True) + "\n").encode()


def _mutate(data: bytes, rng: random.Random, *, hot: int) -> tuple[str, bytes]:
    """One random damage: a bit flip, a random byte, a truncation or a deleted run; half of the positions fall in the
    first ``hot`` bytes (the safetensors header, where damage changes structure rather than values)."""
    position = rng.randrange(hot) if rng.random() < 0.5 else rng.randrange(len(data))
    op = rng.choice(("flip", "byte", "truncate", "delete"))
    if op == "flip":
        bit = rng.randrange(8)
        return f"flip bit {bit} at {position}", data[:position] + bytes([data[position] ^ (1 << bit)]) + data[
            position + 1 :
        ]
    if op == "byte":
        value = rng.randrange(256)
        return f"byte {value} at {position}", data[:position] + bytes([value]) + data[position + 1 :]
    if op == "truncate":
        return f"truncate to {position}", data[:position]
    length = rng.choice((1, 1, 2, 3, 8, 64))
    return f"delete {length} at {position}", data[:position] + data[position + length :]


def _classify(directory: Path, damaged: str, reference: tuple[torch.Tensor, ...], spec: dict) -> str:
    """``"error"``, ``"identical"`` or ``"different"``; any other exception fails the test."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CheckpointWarning)
            model = vqgen.from_pretrained(directory)
    except (ValueError, OSError) as error:
        assert damaged in str(error), f"the error does not name {damaged}: {error}"
        return "error"
    if model.to_spec() != spec:
        return "different"
    try:
        outputs = _outputs(model)
    except (ValueError, RuntimeError):  # a model that loads but cannot run is certainly not the saved one
        return "different"
    same = len(outputs) == len(reference) and all(
        a.shape == b.shape and a.dtype == b.dtype and torch.equal(a, b) for a, b in zip(outputs, reference)
    )
    return "identical" if same else "different"


def _fuzz(saved, tmp_path: Path, *, cases: int, seed: int, checksums: bool) -> dict[str, Counter]:
    original, files, reference, spec = saved
    files = dict(files)
    if not checksums:
        files[CONFIG_NAME] = _without_checksums(files[CONFIG_NAME])
    header = 8 + int.from_bytes(files[WEIGHTS_NAME][:8], "little")
    rng = random.Random(seed)
    directory = tmp_path / "damaged"
    directory.mkdir()
    outcomes = {name: Counter() for name in FILES}
    for case in range(cases):
        target = FILES[case % 2]
        hot = header if target == WEIGHTS_NAME else len(files[target])
        description, damaged = _mutate(files[target], rng, hot=hot)
        for name in FILES:
            (directory / name).write_bytes(damaged if name == target else files[name])
        try:
            outcome = _classify(directory, target, reference, spec)
        except AssertionError:
            raise
        except Exception as error:  # noqa: BLE001  (the point of the test: report the case, not just the crash)
            pytest.fail(f"{target}, {description}: {type(error).__name__}: {error}")
        if checksums:
            assert outcome != "different", f"{target}, {description}: loaded a silently different model"
        outcomes[target][outcome] += 1
    shutil.rmtree(directory)
    summary = {name: dict(counts) for name, counts in outcomes.items()}
    print(f"{cases} cases, seed {seed}, checksums={checksums}: {summary}")  # shown with -s
    return outcomes


@pytest.mark.parametrize("seed", [0, 1])
def test_damaged_checkpoint_fails_clearly_or_loads_identically(saved, tmp_path, seed):
    outcomes = _fuzz(saved, tmp_path, cases=150, seed=seed, checksums=True)
    for name in FILES:
        assert outcomes[name]["error"] > 0, outcomes  # the damage was real


def test_without_checksums_damage_never_crashes_but_can_go_unnoticed(saved, tmp_path):
    outcomes = _fuzz(saved, tmp_path, cases=200, seed=2, checksums=False)
    # Bit flips in the float data change the weights and still load: what weights_sha256 exists to catch.
    assert outcomes[WEIGHTS_NAME]["different"] > 0, outcomes
    assert outcomes[CONFIG_NAME]["error"] > 0 and outcomes[WEIGHTS_NAME]["error"] > 0, outcomes


@pytest.mark.slow
@pytest.mark.parametrize("checksums", [True, False])
def test_damaged_checkpoint_many_cases(saved, tmp_path, checksums):
    _fuzz(saved, tmp_path, cases=4000, seed=10 + checksums, checksums=checksums)


# ------------------------------------------------------------------------------------------- no code execution


class _Payload:
    """Unpickling this would create ``marker``: proof that a loader ran code from a file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_a_pickle_in_place_of_the_weights_is_never_executed(saved, tmp_path):
    original = saved[0]
    shutil.copytree(original, tmp_path / "ckpt")
    marker = tmp_path / "executed"
    (tmp_path / "ckpt" / WEIGHTS_NAME).write_bytes(pickle.dumps({"weight": _Payload(str(marker))}))
    with pytest.raises(ValueError, match=r"model\.safetensors does not match the weights_sha256"):
        vqgen.from_pretrained(tmp_path / "ckpt")
    config = tmp_path / "ckpt" / CONFIG_NAME
    config.write_bytes(_without_checksums(config.read_bytes()))
    with pytest.warns(CheckpointWarning), pytest.raises(ValueError, match=r"model\.safetensors is corrupt"):
        vqgen.from_pretrained(tmp_path / "ckpt")
    assert not marker.exists()


def test_the_class_path_in_config_is_never_imported(saved, tmp_path, monkeypatch):
    original = saved[0]
    shutil.copytree(original, tmp_path / "ckpt")
    (tmp_path / "evil_vqgen_module.py").write_text(f"open({str(tmp_path / 'executed')!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    config = tmp_path / "ckpt" / CONFIG_NAME
    data = json.loads(_without_checksums(config.read_bytes()))
    data["class"] = "evil_vqgen_module.TwoStageModel"
    config.write_text(json.dumps(data))
    with pytest.warns(CheckpointWarning):
        vqgen.from_pretrained(tmp_path / "ckpt")  # built by registry name, as always
    assert "evil_vqgen_module" not in sys.modules and not (tmp_path / "executed").exists()


# ------------------------------------------------------------------------------------------- the wrong kind


def test_a_checkpoint_of_one_kind_loaded_as_another_is_a_clear_error(tmp_path):
    prior = vqgen.build("prior", "rnn", **vqgen.registry("prior").get("rnn").tiny_config())
    prior.save_pretrained(tmp_path / "prior")
    quantizer = vqgen.build("quantizer", "fsq", **vqgen.registry("quantizer").get("fsq").tiny_config())
    quantizer.save_pretrained(tmp_path / "quantizer")
    with pytest.raises(TypeError, match=rf"holds a {type(prior).__name__}, not a Quantizer.*vqgen\.from_pretrained"):
        vqgen.Quantizer.from_pretrained(tmp_path / "prior")
    with pytest.raises(TypeError, match=r"holds a FiniteScalarQuantizer, not a AutoregressivePrior"):
        vqgen.AutoregressivePrior.from_pretrained(tmp_path / "quantizer")
    with pytest.raises(TypeError, match=r"holds a FiniteScalarQuantizer, not a TwoStageModel"):
        TwoStageModel.from_pretrained(tmp_path / "quantizer")
    # The weights of one kind beside the config of another: refused before anything is built.
    shutil.copy(tmp_path / "prior" / WEIGHTS_NAME, tmp_path / "quantizer" / WEIGHTS_NAME)
    with pytest.raises(ValueError, match=r"model\.safetensors does not match the weights_sha256"):
        vqgen.from_pretrained(tmp_path / "quantizer")
