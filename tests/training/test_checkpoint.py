"""Checkpoint files: nested state round trip, no pickle, clear errors for foreign or damaged files."""
import math
import pickle

import numpy as np
import pytest

from minidl.training import CheckpointError, load_checkpoint, save_checkpoint


def test_nested_round_trip(tmp_path):
    state = {
        "model": {"0.weight": np.arange(6, dtype=np.float32).reshape(2, 3), "0.bias": np.zeros(3)},
        "optimizer": {"param_groups.0.lr": 0.1, "state.0.step": 7, "param_groups.0.betas": np.array([0.9, 0.999])},
        "position": {"epoch": 2, "batch": 0, "sums": {"loss": 1.25, "examples": 64}},
        "rng": {"bit_generator": "PCG64", "state": {"state": 2**127 + 12345, "inc": 3}},
        "misc": [1, "two", None, True, (3.5, float("nan"))],
        4: "integer key",
    }
    path = save_checkpoint(state, tmp_path / "ckpt.npz")
    back = load_checkpoint(path)
    np.testing.assert_array_equal(back["model"]["0.weight"], state["model"]["0.weight"])
    assert back["model"]["0.weight"].dtype == np.float32
    assert back["optimizer"]["param_groups.0.lr"] == 0.1 and back["optimizer"]["state.0.step"] == 7
    assert back["position"] == state["position"]
    assert back["rng"]["state"]["state"] == 2**127 + 12345        # big ints survive exactly
    assert back["misc"][:4] == [1, "two", None, True] and isinstance(back["misc"][4], tuple)
    assert math.isnan(back["misc"][4][1])
    assert back[4] == "integer key"


def test_numpy_scalars_become_python_numbers(tmp_path):
    back = load_checkpoint(save_checkpoint({"a": np.float32(1.5), "b": np.int64(3)}, tmp_path / "c.npz"))
    assert back == {"a": 1.5, "b": 3}


def test_unstorable_value_is_named(tmp_path):
    with pytest.raises(TypeError, match="set at /x"):
        save_checkpoint({"x": {1, 2}}, tmp_path / "c.npz")


@pytest.mark.parametrize("state, error, problem", [
    ({1: np.ones(2), "1": np.zeros(2)}, ValueError, "keys 1 and '1' at / would both be stored as '1'"),
    ({"m": {1.5: np.ones(1), "1.5": np.zeros(1)}}, ValueError, "keys 1.5 and '1.5' at /m would both be stored"),
    ({None: np.ones(1), "None": np.zeros(1)}, ValueError, "keys None and 'None' at / would both be stored"),
    ({True: np.ones(1), "True": np.zeros(1)}, ValueError, "keys True and 'True' at / would both be stored"),
    ({"a/b": np.ones(2), "a": {"b": np.zeros(2)}}, ValueError, "key 'a/b' at / contains '/'"),
    ({"m": {(0, 1): 1.0}}, TypeError, r"key \(0, 1\) at /m has type tuple; keys must be strings"),
    ({np.int64(3): 1.0}, TypeError, "at / has type int64"),
    ({"a\0b": np.ones(2)}, ValueError, "contains a NUL character"),
])
def test_keys_that_would_not_come_back_are_refused_on_save(tmp_path, state, error, problem):
    """Keys stored under one name mixed their values ({1: a, "1": b} loaded as b twice; {"a/b": x, "a": {"b": y}}
    too); a tuple key saved but did not load."""
    with pytest.raises(error, match=problem):
        save_checkpoint(state, tmp_path / "c.npz")
    assert not list(tmp_path.iterdir())


def test_an_array_key_no_member_name_can_hold_is_named_before_anything_is_written(tmp_path):
    """A lone surrogate (what os.fsdecode makes of an undecodable byte) raised UnicodeEncodeError from inside
    zipfile, after the checkpoint's folder was made, naming no key."""
    with pytest.raises(ValueError, match=r"checkpoint: the array at '/model/\\udcff' cannot be stored: its name "
                                         r"holds '\\udcff' at position 7, a lone surrogate"):
        save_checkpoint({"model": {"w": np.ones(2), "\udcff": np.ones(2)}}, tmp_path / "run" / "c.npz")
    assert not list(tmp_path.iterdir())
    path = save_checkpoint({"step": 1}, tmp_path / "c.npz")
    before = path.read_bytes(), path.stat().st_mtime_ns
    with pytest.raises(ValueError, match=r"'/\\udcff' cannot be stored"):
        save_checkpoint({"\udcff": np.ones(2)}, path)
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    assert load_checkpoint(save_checkpoint({"\udcff": 1.5}, path)) == {"\udcff": 1.5}   # JSON holds it


def test_keys_of_each_kind_round_trip_exactly(tmp_path):
    """A PyTorch-style optimizer state: its "state" dict has int keys; they come back as ints."""
    state = {"optimizer": {"state": {0: {"step": 3, "exp_avg": np.ones(2)}, 1: {"step": 3, "exp_avg": np.zeros(2)}},
                           "param_groups": [{"lr": 0.1, "params": [0, 1]}]},
             "other": {1.5: "float", None: "none", True: "bool", "": np.arange(2), "a.b c": 1}}
    back = load_checkpoint(save_checkpoint(state, tmp_path / "c.npz"))
    assert list(back["optimizer"]["state"]) == [0, 1]
    assert back["optimizer"]["param_groups"] == [{"lr": 0.1, "params": [0, 1]}]
    np.testing.assert_array_equal(back["optimizer"]["state"][1]["exp_avg"], np.zeros(2))
    assert [type(k) for k in back["other"]] == [float, type(None), bool, str, str]
    np.testing.assert_array_equal(back["other"][""], np.arange(2))


def test_plain_npz_is_not_a_checkpoint(tmp_path):
    np.savez(tmp_path / "plain.npz", a=np.zeros(2))
    with pytest.raises(CheckpointError, match="plain.npz: not a minidl checkpoint"):
        load_checkpoint(tmp_path / "plain.npz")


def test_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.npz"
    path.write_bytes(pickle.dumps({"model": [1, 2, 3]}))
    with pytest.raises(ValueError):
        load_checkpoint(path)
    np.savez(tmp_path / "objects.npz", __tree__=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="pickle"):
        load_checkpoint(tmp_path / "objects.npz")


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    path = save_checkpoint({"w": np.ones(1000)}, tmp_path / "c.npz")
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match="c.npz"):
        load_checkpoint(path)


def test_a_tree_nested_too_deeply_is_a_clear_error(tmp_path):
    """A description nested 100,000 levels deep raised RecursionError."""
    import minidl as mdl
    from minidl.training.checkpoint import FORMAT

    tree = '{"format": "%s", "state": %s}' % (FORMAT, '{"list": [' * 100_000 + "0" + "]}" * 100_000)
    mdl.save({"__tree__": np.frombuffer(tree.encode(), dtype=np.uint8)}, tmp_path / "deep.npz")
    with pytest.raises(CheckpointError, match="deep.npz: damaged checkpoint description"):
        load_checkpoint(tmp_path / "deep.npz")


def test_no_temporary_files_left(tmp_path):
    save_checkpoint({"w": np.ones(3)}, tmp_path / "c.npz")
    save_checkpoint({"w": np.zeros(3)}, tmp_path / "c.npz")
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]
    np.testing.assert_array_equal(load_checkpoint(tmp_path / "c.npz")["w"], np.zeros(3))


def test_plain_npy_is_refused_with_value_error(tmp_path):
    import minidl as mdl

    np.save(tmp_path / "x.npy", np.zeros(3))
    with pytest.raises(ValueError, match="a single .npy array \\(float64, shape \\(3,\\)\\), not an .npz archive"):
        mdl.load(tmp_path / "x.npy")
    with pytest.raises(ValueError, match="is a directory"):
        mdl.load(tmp_path)
