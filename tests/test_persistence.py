"""save_pretrained / from_pretrained: round trips, format version, and clear errors for bad checkpoints."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import vqgen
from vqgen.persistence import CONFIG_NAME, WEIGHTS_NAME, CheckpointWarning, config_digest


@vqgen.register("model", "_test_pair")
class _Pair(vqgen.Component):
    """A composition: two components passed as objects (or specs) to the constructor."""

    def __init__(self, first: object = None, second: object = None, scale: float = 1.0) -> None:
        super().__init__()
        self.first = first if isinstance(first, nn.Module) else vqgen.build_from_spec(first)
        self.second = second if isinstance(second, nn.Module) else vqgen.build_from_spec(second)


@vqgen.register("model", "_test_leaf")
class _Leaf(vqgen.Component):
    def __init__(self, width: int = 4, tied: bool = False) -> None:
        super().__init__()
        self.a = nn.Linear(width, width)
        self.b = nn.Linear(width, width)
        if tied:
            self.b.weight = self.a.weight
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))


def _edit_config(directory, change, *, checksums: str = "restamp") -> None:
    """Apply ``change(config)`` to ``config.json``; then ``restamp`` its config_sha256 (as a newer vqgen writing the
    file would), ``keep`` the stale one, or ``drop`` both checksums (a checkpoint written before they existed)."""
    path = directory / CONFIG_NAME
    config = json.loads(path.read_text())
    change(config)
    if checksums == "restamp":
        config["config_sha256"] = config_digest(config)
    elif checksums == "drop":
        config.pop("config_sha256", None)
        config.pop("weights_sha256", None)
    path.write_text(json.dumps(config, indent=2))


def _assert_same_state(x: nn.Module, y: nn.Module) -> None:
    sx, sy = x.state_dict(), y.state_dict()
    assert sx.keys() == sy.keys()
    for key in sx:
        assert torch.equal(sx[key], sy[key]), key


def test_leaf_round_trip(tmp_path):
    leaf = _Leaf(width=5)
    leaf.steps += 3
    leaf.save_pretrained(tmp_path)
    config = json.loads((tmp_path / CONFIG_NAME).read_text())
    assert (
        config["format_version"] == 1
        and config["name"] == "_test_leaf"
        and config["config"]
        == {
            "width": 5,
            "tied": False,
        }
    )
    loaded = vqgen.from_pretrained(tmp_path)
    assert isinstance(loaded, _Leaf)
    _assert_same_state(leaf, loaded)


def test_tied_weights_round_trip(tmp_path):
    leaf = _Leaf(tied=True)
    leaf.save_pretrained(tmp_path)
    loaded = _Leaf.from_pretrained(tmp_path)
    _assert_same_state(leaf, loaded)
    assert loaded.a.weight is loaded.b.weight


def test_composition_round_trip(tmp_path):
    pair = _Pair(first=_Leaf(width=3), second=_Leaf(width=6, tied=True), scale=0.5)
    assert pair.config["second"] == {"kind": "model", "name": "_test_leaf", "config": {"width": 6, "tied": True}}
    pair.save_pretrained(tmp_path)
    loaded = vqgen.from_pretrained(tmp_path)
    assert loaded.to_spec() == pair.to_spec()
    _assert_same_state(pair, loaded)


def test_wrong_class_in_from_pretrained(tmp_path):
    _Leaf().save_pretrained(tmp_path)
    with pytest.raises(TypeError, match="holds a _Leaf, not a _Pair"):
        _Pair.from_pretrained(tmp_path)


def test_weights_of_another_config_name_the_tensors(tmp_path):
    _Leaf(width=4).save_pretrained(tmp_path)
    _edit_config(tmp_path, lambda config: config["config"].update(width=8))
    with pytest.raises(ValueError, match=r"(?s)do not fit.*a\.weight: checkpoint \(4, 4\) vs model \(8, 8\)"):
        vqgen.from_pretrained(tmp_path)


def test_missing_and_unexpected_tensors_are_named(tmp_path):
    _Leaf().save_pretrained(tmp_path)
    other = tmp_path / "other"
    _Pair(first=_Leaf(), second=_Leaf()).save_pretrained(other)
    (other / WEIGHTS_NAME).replace(tmp_path / WEIGHTS_NAME)
    with pytest.raises(ValueError, match=r"model\.safetensors does not match the weights_sha256 in .*config\.json"):
        vqgen.from_pretrained(tmp_path)
    _edit_config(tmp_path, lambda config: None, checksums="drop")  # without checksums, the strict load names them
    expected = r"(?s)missing from the checkpoint: \['a.bias'.*not in the model: \['first.a.bias'"
    with pytest.warns(CheckpointWarning, match="no config_sha256"), pytest.raises(ValueError, match=expected):
        vqgen.from_pretrained(tmp_path)


def test_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        vqgen.from_pretrained(tmp_path / "nowhere")
    tmp_path.joinpath("empty").mkdir()
    with pytest.raises(FileNotFoundError, match="config.json is missing"):
        vqgen.from_pretrained(tmp_path / "empty")
    _Leaf().save_pretrained(tmp_path / "ckpt")
    (tmp_path / "ckpt" / WEIGHTS_NAME).unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors is missing"):
        vqgen.from_pretrained(tmp_path / "ckpt")


def test_extra_weight_file_is_ambiguous(tmp_path):
    _Leaf().save_pretrained(tmp_path)
    (tmp_path / "pytorch_model.bin").write_bytes(b"\0")
    (tmp_path / "README.md").write_text("notes are fine")
    with pytest.raises(ValueError, match=r"pytorch_model\.bin"):
        vqgen.from_pretrained(tmp_path)


def test_corrupt_weights(tmp_path):
    _Leaf().save_pretrained(tmp_path)
    data = (tmp_path / WEIGHTS_NAME).read_bytes()
    (tmp_path / WEIGHTS_NAME).write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="corrupt"):
        vqgen.from_pretrained(tmp_path)


def test_corrupt_or_foreign_config(tmp_path):
    _Leaf().save_pretrained(tmp_path)
    (tmp_path / CONFIG_NAME).write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        vqgen.from_pretrained(tmp_path)
    (tmp_path / CONFIG_NAME).write_text(json.dumps({"kind": "model"}))
    with pytest.raises(ValueError, match="format_version"):
        vqgen.from_pretrained(tmp_path)
    (tmp_path / CONFIG_NAME).write_text(json.dumps({"format_version": 99, "kind": "model", "name": "x", "config": {}}))
    with pytest.raises(ValueError, match="checkpoint format 99"):
        vqgen.from_pretrained(tmp_path)


def test_unknown_config_key_in_checkpoint_warns_and_is_ignored(tmp_path):
    leaf = _Leaf(width=3)
    leaf.save_pretrained(tmp_path)
    _edit_config(tmp_path, lambda config: config["config"].update(depth=3))  # an option of a newer vqgen
    with pytest.warns(CheckpointWarning, match=r"_test_leaf' at the top level takes no \['depth'\].*newer"):
        loaded = vqgen.from_pretrained(tmp_path)
    assert loaded.config == leaf.config
    _assert_same_state(leaf, loaded)


def test_unknown_keys_in_nested_components_and_at_the_top_warn(tmp_path):
    pair = _Pair(first=_Leaf(width=3), second=_Leaf(width=2))
    pair.save_pretrained(tmp_path)

    def newer(config):
        config["config"]["second"]["config"]["dropout"] = 0.1
        config["license"] = "MIT"

    _edit_config(tmp_path, newer)
    with pytest.warns(CheckpointWarning) as record:
        loaded = vqgen.from_pretrained(tmp_path)
    messages = [str(w.message) for w in record]
    assert any("['license']" in m and CONFIG_NAME in m for m in messages), messages
    assert any("_test_leaf' at config['second'] takes no ['dropout']" in m for m in messages), messages
    _assert_same_state(pair, loaded)


def test_newer_format_version_is_still_refused(tmp_path):
    _Leaf().save_pretrained(tmp_path)
    _edit_config(tmp_path, lambda config: config.update(format_version=2, new_section={}))
    with pytest.raises(ValueError, match=r"config\.json has checkpoint format 2, but this vqgen .* reads format 1"):
        vqgen.from_pretrained(tmp_path)
    _edit_config(tmp_path, lambda config: config.update(format_version="1"))
    with pytest.raises(ValueError, match="checkpoint format '1'"):
        vqgen.from_pretrained(tmp_path)


def test_hand_edit_is_detected_and_accepted_once_the_checksum_line_is_deleted(tmp_path):
    _Leaf(width=4).save_pretrained(tmp_path)
    _edit_config(tmp_path, lambda config: config["config"].update(tied=True), checksums="keep")
    with pytest.raises(ValueError, match=r"config\.json does not match its config_sha256.*delete the 'config_sha256'"):
        vqgen.from_pretrained(tmp_path)
    _edit_config(tmp_path, lambda config: config.pop("config_sha256"), checksums="keep")
    with pytest.warns(CheckpointWarning, match="no config_sha256"):
        loaded = vqgen.from_pretrained(tmp_path)
    assert loaded.config["tied"] is True and loaded.a.weight is loaded.b.weight


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path, monkeypatch):
    _Leaf(width=4).save_pretrained(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(json, "dumps", crash)  # the save dies after writing the weights, before the config
    with pytest.raises(OSError, match="disk full"):
        _Leaf(width=4).save_pretrained(tmp_path)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # the old checkpoint, untouched
    vqgen.from_pretrained(tmp_path)


def test_integer_weights_are_not_converted_from_floats(tmp_path):
    from safetensors.torch import save_file

    leaf = _Leaf()
    leaf.save_pretrained(tmp_path)
    state = {k: v.clone() for k, v in leaf.state_dict().items()}
    state["steps"] = state["steps"].double()
    save_file(state, str(tmp_path / WEIGHTS_NAME))
    _edit_config(tmp_path, lambda config: None, checksums="drop")
    with (
        pytest.warns(CheckpointWarning),
        pytest.raises(ValueError, match=r"dtype mismatches: steps: checkpoint torch\.float64 vs model torch\.int64"),
    ):
        vqgen.from_pretrained(tmp_path)


def test_overwrite_false(tmp_path):
    _Leaf().save_pretrained(tmp_path)
    with pytest.raises(FileExistsError):
        _Leaf().save_pretrained(tmp_path, overwrite=False)


def test_unregistered_component_cannot_be_saved(tmp_path):
    class Loose(vqgen.Component):
        def __init__(self) -> None:
            super().__init__()

    with pytest.raises(TypeError, match="not registered"):
        Loose().save_pretrained(tmp_path)


def test_component_device_from_parameters_then_buffers_then_cpu():
    class Empty(vqgen.Component):
        def __init__(self) -> None:
            super().__init__()

    assert _Leaf().device == torch.device("cpu")
    buffers_only = Empty()
    buffers_only.register_buffer("table", torch.zeros(2, device="meta"))
    assert buffers_only.device == torch.device("meta")
    assert Empty().device == torch.device("cpu")
    assert _Leaf().to("meta").device == torch.device("meta")
