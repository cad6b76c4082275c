"""mdl.save / mdl.load: .npz round trip, atomic writes, no pickle ever."""
import os
import pickle

import numpy as np
import pytest

import minidl as mdl
from minidl import nn


def test_roundtrip_keeps_names_dtypes_and_values(tmp_path):
    state = {"0.weight": np.arange(6, dtype=np.float32).reshape(2, 3), "0.bias": np.zeros(3),
             "step": 7, "lr": 0.25, "flag": True, "name": "sigmoid", "t": mdl.tensor([1.0, 2.0])}
    path = tmp_path / "state"
    mdl.save(state, path)
    assert os.listdir(tmp_path) == ["state"]             # exactly that name, no temp file left
    out = mdl.load(path)
    assert list(out) == list(state)
    assert out["0.weight"].dtype == np.float32
    np.testing.assert_array_equal(out["0.weight"], state["0.weight"])
    assert out["step"].item() == 7 and out["lr"].item() == 0.25 and out["flag"].item() is True
    assert out["name"].item() == "sigmoid"
    np.testing.assert_array_equal(out["t"], [1.0, 2.0])


def test_model_state_dict_roundtrip(tmp_path):
    a, b = nn.MLP([5, 7, 2]), nn.MLP([5, 7, 2])
    mdl.save(a.state_dict(), str(tmp_path / "m.npz"))
    b.load_state_dict(mdl.load(str(tmp_path / "m.npz")))
    x = mdl.tensor(np.ones((3, 5)))
    np.testing.assert_array_equal(a(x).data, b(x).data)


def test_overwrite_is_atomic_replace(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    mdl.save({"a": np.ones(3)}, path)

    def exploding_savez(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(np, "savez", exploding_savez)
    with pytest.raises(OSError, match="disk full"):
        mdl.save({"a": np.zeros(3)}, path)
    monkeypatch.undo()
    np.testing.assert_array_equal(mdl.load(path)["a"], np.ones(3))   # old file intact
    assert os.listdir(tmp_path) == ["ckpt.npz"]                      # temp file cleaned up


def test_object_arrays_refused_on_save(tmp_path):
    with pytest.raises(ValueError, match="object"):
        mdl.save({"bad": np.array([{"a": 1}], dtype=object)}, tmp_path / "x.npz")
    with pytest.raises(TypeError, match="nested"):
        mdl.save({"bad": {"inner": np.ones(2)}}, tmp_path / "x.npz")
    assert not os.listdir(tmp_path)


def test_files_needing_pickle_refused_on_load(tmp_path):
    npz = tmp_path / "obj.npz"
    np.savez(npz, bad=np.array([None, 1], dtype=object))       # numpy pickles object arrays
    with pytest.raises(ValueError, match="pickle"):
        mdl.load(npz)
    pkl = tmp_path / "state.pkl"
    pkl.write_bytes(pickle.dumps({"w": np.ones(2)}))
    with pytest.raises(ValueError, match="pickle"):
        mdl.load(pkl)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        mdl.load(tmp_path / "nope.npz")
    path = tmp_path / "cut.npz"
    mdl.save({"w": np.ones(1000)}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.npz"):
        mdl.load(path)


def test_saved_file_gets_the_usual_permissions(tmp_path):
    path = tmp_path / "perm.npz"
    mdl.save({"a": np.ones(2)}, path)
    umask = os.umask(0)
    os.umask(umask)
    assert (os.stat(path).st_mode & 0o777) == (0o666 & ~umask)
