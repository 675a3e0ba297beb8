"""Released MMPose checkpoints load safely and strictly; foreign ones fail with the key lists."""
from __future__ import annotations

import pickle
import sys
import types

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from starpose import CheckpointError, create_model, load_mmpose_checkpoint

from conftest import REFERENCE, shared


def _release_state() -> dict:
    g = load_file(str(shared(REFERENCE) / "starpose_t_golden.safetensors"))
    return {k[len("model."):]: v for k, v in g.items() if k.startswith("model.")}


def _save_mmengine_style(path, state):
    """Write a .pth laid out like an mmengine checkpoint, whose meta holds objects of classes
    that do not exist here (as with mmengine's HistoryBuffer) and numpy arrays."""
    mod = types.ModuleType("mmengine_fake.logging")

    class HistoryBuffer:  # noqa: D401 - stands for mmengine's class
        def __init__(self):
            self.data = np.arange(3.0)

    HistoryBuffer.__module__ = "mmengine_fake.logging"
    HistoryBuffer.__qualname__ = "HistoryBuffer"
    mod.HistoryBuffer = HistoryBuffer
    sys.modules["mmengine_fake.logging"] = mod
    sys.modules.setdefault("mmengine_fake", types.ModuleType("mmengine_fake"))
    try:
        ckpt = {"meta": {"epoch": 260, "mmpose_version": "1.3.1", "hook": HistoryBuffer(),
                         "seed": np.int64(7)},
                "state_dict": {**state}, "message_hub": {"log": HistoryBuffer()}}
        torch.save(ckpt, path)
    finally:
        del sys.modules["mmengine_fake.logging"]


def test_loads_an_mmengine_pth_without_unpickling_its_objects(tmp_path):
    state = _release_state()
    path = tmp_path / "starpose_t_coco.pth"
    _save_mmengine_style(path, state)
    # a plain weights_only load refuses the foreign globals (this proves the file really holds them)
    with pytest.raises(pickle.UnpicklingError, match="Unsupported global: GLOBAL mmengine_fake.logging.HistoryBuffer"):
        torch.load(path, weights_only=True)
    model = load_mmpose_checkpoint(path, "t")
    g = load_file(str(shared(REFERENCE) / "starpose_t_golden.safetensors"))
    with torch.no_grad():
        sx, _ = model(g["input"])
    assert (sx - g["simcc_x"]).abs().max() <= 1e-4
    assert "mmengine_fake.logging" not in sys.modules


def test_safetensors_and_variant_names(tmp_path):
    path = tmp_path / "w.safetensors"
    save_file({f"model.{k}": v.contiguous() for k, v in _release_state().items()}, str(path))
    m = load_mmpose_checkpoint(path, "starpose_t")
    assert not m.training
    with pytest.raises(CheckpointError, match="unknown variant"):
        load_mmpose_checkpoint(path, "xl")


def test_wrong_variant_lists_missing_and_unexpected_keys():
    with pytest.raises(CheckpointError) as e:
        load_mmpose_checkpoint(_release_state(), "s")
    msg = str(e.value)
    assert "does not fit starpose_s" in msg and "missing keys" in msg and "unexpected keys" in msg
    assert "backbone.stem.conv1.conv.weight" in e.value.unexpected  # t's conv stem; s has the dilated one
    assert "backbone.prmv1.convs.0.0.weight" in e.value.missing


def test_foreign_checkpoint_and_shape_mismatch(tmp_path):
    with pytest.raises(CheckpointError, match="missing keys"):
        load_mmpose_checkpoint({"fc.weight": torch.zeros(3, 3)}, "t")
    state = _release_state()
    state["head.final_layer.weight"] = torch.zeros(14, 128, 1, 1)
    with pytest.raises(CheckpointError, match="shape mismatches.*head.final_layer.weight"):
        load_mmpose_checkpoint(state, "t")


def test_weights_of_another_input_size_say_which_size():
    """Only the SimCC head's sizes follow the input size: the error says the checkpoint's size."""
    state = create_model("starpose_t").state_dict()  # 256x192 (h x w)
    with pytest.raises(CheckpointError, match=r"trained at a 256x192 input \(height x width\), the model was built "
                                              r"for 128x96; build it at 256x192 \(eval / train: --input-size 256x192\)"):
        load_mmpose_checkpoint(state, "t", input_size=(96, 128))
    state["head.final_layer.weight"] = torch.zeros(14, *state["head.final_layer.weight"].shape[1:])
    with pytest.raises(CheckpointError) as e:  # another keypoint count: no input-size hint
        load_mmpose_checkpoint(state, "t")
    assert "trained at" not in str(e.value)


def test_weights_files_run_at_the_input_size_they_were_trained_at(tmp_path):
    """predict / export / eval (without --input-size) build the model at the size the file's SimCC head was
    built for, read from the head's shapes."""
    from mobile_export.source import resolve_model
    from starpose.models.checkpoint import head_input_size, read_weights
    from starpose.models.weights import load_model

    small = create_model("starpose_t", input_size=(96, 128))  # (w, h)
    path = tmp_path / "small.safetensors"
    save_file({k: v.contiguous() for k, v in small.state_dict().items()}, str(path))
    assert head_input_size(read_weights(path)) == (96, 128)
    assert tuple(load_model("starpose_t", str(path)).spec.input_size) == (96, 128)
    model, _ = resolve_model("starpose_t", str(path))
    assert tuple(model.spec.input_size) == (96, 128)
    assert tuple(load_model("starpose_t", "random").spec.input_size) == (192, 256)
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="junk.safetensors"):  # read once, and the reading reports why
        load_model("starpose_t", str(tmp_path / "junk.safetensors"))


def test_unreadable_files(tmp_path):
    bad = tmp_path / "broken.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="broken.pth"):
        load_mmpose_checkpoint(bad, "t")
    with pytest.raises(CheckpointError, match="not found"):
        load_mmpose_checkpoint(tmp_path / "nope.pth", "t")
    st = tmp_path / "bad.safetensors"
    st.write_bytes(b"\x00" * 16)
    with pytest.raises(CheckpointError, match="bad.safetensors"):
        load_mmpose_checkpoint(st, "t")
