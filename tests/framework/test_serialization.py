"""mdl.save / mdl.load: .npz round trip, atomic writes, no pickle ever."""
import os
import pickle
import stat

import numpy as np
import pytest

import minidl as mdl
from minidl import nn, serialization


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

    def exploding_write(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(serialization, "_write_npz", exploding_write)
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


def test_overwriting_keeps_the_files_mode(tmp_path):
    """Overwriting a 0600 file made it 0644: the temporary got the umask's mode, not the file's."""
    path = tmp_path / "private.npz"
    mdl.save({"a": np.ones(2)}, path)
    os.chmod(path, 0o600)
    mdl.save({"a": np.zeros(2)}, path)
    assert (os.stat(path).st_mode & 0o777) == 0o600
    np.testing.assert_array_equal(mdl.load(path)["a"], np.zeros(2))


def test_any_key_round_trips(tmp_path):
    """np.savez took "file" as its own argument (TypeError) and gave "x.npy" and "x" one member (x.npy came
    back holding x's values)."""
    state = {"x.npy": np.zeros(2), "x": np.ones(1), "file": np.arange(3), "a/b c": np.float32(2.5), "": np.ones(())}
    mdl.save(state, tmp_path / "keys.npz")
    loaded = mdl.load(tmp_path / "keys.npz")
    assert loaded.keys() == state.keys()
    for key, value in state.items():
        np.testing.assert_array_equal(loaded[key], value)
    with np.load(tmp_path / "keys.npz") as npz:                  # still NumPy's format
        np.testing.assert_array_equal(npz["file"], np.arange(3))


def test_a_key_holding_nul_is_refused_on_save(tmp_path):
    """zipfile cuts a name at NUL: {"a\\0b": x} saved as member "a", which did not load; two such keys gave one
    member twice, with only zipfile's warning."""
    with pytest.raises(ValueError, match=r"key 'a\\x00b' contains a NUL character"):
        mdl.save({"a\0b": np.ones(2)}, tmp_path / "nul.npz")
    assert not os.listdir(tmp_path)


def test_a_path_holding_nul_is_refused_naming_it(tmp_path):
    """os.path.realpath's own 'embedded null byte' did not say which file."""
    with pytest.raises(ValueError, match=r"cannot write '.*a\\x00b': a path cannot contain a NUL character"):
        mdl.save({"a": np.ones(2)}, str(tmp_path / "a\0b"))
    assert not os.listdir(tmp_path)


def _files(folder):
    """Every file in `folder`: {name: (bytes, mtime in ns)}."""
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}


@pytest.mark.parametrize("key, problem", [
    ("\udcff", r"key '\\udcff' holds '\\udcff' at position 0, a lone surrogate, which UTF-8 .* cannot encode"),
    ("w.\ud800", r"key 'w.\\ud800' holds '\\ud800' at position 2, a lone surrogate"),
    ("k" * 65_532, r"key 'kkkk.*kkkk' is 65,536 bytes in UTF-8 with its '.npy', more than the 65,535"),
], ids=["surrogate", "surrogate-after-text", "too-long"])
def test_a_key_no_member_name_can_hold_is_named_before_any_file_is_touched(tmp_path, key, problem):
    """A lone surrogate (what os.fsdecode makes of an undecodable byte) raised UnicodeEncodeError from inside
    zipfile, naming no key; a name over 65,535 bytes raised struct.error ("ushort format requires ...")."""
    path = tmp_path / "state.npz"
    mdl.save({"old": np.ones(2)}, path)
    before = _files(tmp_path)
    with pytest.raises(ValueError, match=rf"save\('{path}'\): {problem}") as info:
        mdl.save({"fine": np.zeros(2), key: np.ones(2)}, path)
    assert "\n" not in str(info.value) and len(str(info.value)) < 400
    assert _files(tmp_path) == before
    with pytest.raises(ValueError, match="lone surrogate|more than the 65,535"):
        mdl.save({key: np.ones(2)}, tmp_path / "new.npz")
    assert _files(tmp_path) == before


def test_the_longest_key_a_member_name_holds_round_trips(tmp_path):
    key = "k" * (65_535 - len(".npy"))
    mdl.save({key: np.arange(3)}, tmp_path / "long.npz")
    np.testing.assert_array_equal(mdl.load(tmp_path / "long.npz")[key], np.arange(3))


def test_a_path_the_file_system_cannot_encode_is_a_value_error_naming_it(tmp_path):
    """A lone surrogate no file name can hold raised UnicodeEncodeError from tempfile."""
    path = str(tmp_path / "w\ud800.npz")
    with pytest.raises(ValueError, match=r"w\\ud800.npz'.*cannot encode this name") as info:
        mdl.save({"w": np.ones(2)}, path)
    assert not isinstance(info.value, UnicodeError)
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize("occurrence", [0, 1, None], ids=["local-header", "central-directory", "both"])
def test_a_member_name_that_is_not_utf8_is_a_value_error_naming_the_file(tmp_path, occurrence):
    """A damaged name in a member flagged as UTF-8 raised zipfile's UnicodeDecodeError, naming no file."""
    path = tmp_path / "names.npz"
    mdl.save({"\u00e9": np.ones(2)}, path)            # non-ASCII: stored as UTF-8, with the flag
    data = path.read_bytes()
    name = "\u00e9.npy".encode("utf-8")
    assert data.count(name) == 2                        # the local header, then the central directory
    at = [data.find(name), data.rfind(name)]
    for start in at if occurrence is None else [at[occurrence]]:
        data = data[:start] + b"\xff\xfe" + data[start + 2:]
    path.write_bytes(data)
    with pytest.raises(ValueError, match=rf"load\('{path}'\): a member name is not valid UTF-8 .*: damaged") as info:
        mdl.load(path)
    assert not isinstance(info.value, UnicodeError)


def _npz_with_member(path, name, payload: bytes):
    import zipfile
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(name, payload)


def test_a_member_that_declares_more_than_it_holds_is_refused_before_allocating(tmp_path):
    """A 200-byte member whose header declares a 100000 x 100000 array gave a MemoryError traceback."""
    import io
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (100000, 100000)})
    _npz_with_member(tmp_path / "bomb.npz", "w.npy", header.getvalue() + b"\0" * 64)
    with pytest.raises(ValueError, match=r"declares a float64 array of shape \(100000, 100000\) \(80,000,000,000 "
                                         r"bytes\) but holds 64 bytes: damaged"):
        mdl.load(tmp_path / "bomb.npz")
    _npz_with_member(tmp_path / "other.npz", "notes.txt", b"hello")
    with pytest.raises(ValueError, match="member 'notes.txt' is not an .npy array"):
        mdl.load(tmp_path / "other.npz")


@pytest.mark.parametrize("offset, value", [(6, 0xFF), (8, 0x01), (8, 0x40), (10, 99)],
                         ids=["version", "encrypted-flag", "strong-encryption-flag", "method"])
def test_a_flipped_byte_in_the_central_directory_is_a_value_error(tmp_path, offset, value):
    """A flipped "version", "flags" or "method" byte of an entry raised NotImplementedError or RuntimeError
    ("... is encrypted")."""
    path = tmp_path / "flipped.npz"
    mdl.save({"w": np.ones(3)}, path)
    data = bytearray(path.read_bytes())
    data[data.find(b"PK\x01\x02") + offset] = value          # the first entry of the central directory
    path.write_bytes(data)
    with pytest.raises(ValueError, match="flipped.npz"):
        mdl.load(path)


@pytest.mark.parametrize("shape", [(0, 10**20), (-1, -2), (2**40, 2**40, 0)])
def test_a_shape_no_array_can_have_is_refused(tmp_path, shape):
    """(0, 10**20) holds 0 bytes, as the header says, and crashed NumPy with OverflowError; (-1, -2) gave
    NumPy's ValueError naming neither file nor member."""
    import io
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": shape})
    _npz_with_member(tmp_path / "huge.npz", "w.npy", header.getvalue() + b"\0" * 8 * (min(shape) < 0))
    with pytest.raises(ValueError, match=r"load\(.*huge.npz'\): member 'w.npy' declares a float32 array of shape "
                                         r".*, which no array can have"):
        mdl.load(tmp_path / "huge.npz")


def test_compressed_members_load_as_numpy_writes_them_and_other_methods_are_refused(tmp_path, monkeypatch):
    """np.savez_compressed's deflated members load; a deflated member that unpacks to more memory than the
    process gets is a ValueError naming it; another zip method is refused."""
    import zipfile
    np.savez_compressed(tmp_path / "deflated.npz", w=np.arange(12.0).reshape(3, 4), b=np.zeros(3, np.float32))
    loaded = mdl.load(tmp_path / "deflated.npz")
    np.testing.assert_array_equal(loaded["w"], np.arange(12.0).reshape(3, 4))
    assert loaded["b"].dtype == np.float32

    def out_of_memory(*args, **kwargs):
        raise MemoryError
    with monkeypatch.context() as patch:
        patch.setattr(np.lib.format, "read_array", out_of_memory)
        with pytest.raises(ValueError, match=r"deflated.npz'\): member '(w|b).npy' unpacks to \d+ bytes, more memory"):
            mdl.load(tmp_path / "deflated.npz")
    with zipfile.ZipFile(tmp_path / "bzip2.npz", "w", zipfile.ZIP_BZIP2) as archive:
        archive.writestr("w.npy", (tmp_path / "deflated.npz").read_bytes()[:10])
    with pytest.raises(ValueError, match=r"member 'w.npy' is compressed with zip method 12"):
        mdl.load(tmp_path / "bzip2.npz")


def test_a_member_stored_in_more_bytes_than_the_file_has_is_refused_before_allocating(tmp_path):
    """A 200-byte file whose directory gave a member 2 GB, as its header declares, allocated 2 GB."""
    import io
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (2**28,)})
    _npz_with_member(tmp_path / "liar.npz", "w.npy", header.getvalue() + b"\0" * 64)
    data = bytearray((tmp_path / "liar.npz").read_bytes())
    entry = data.find(b"PK\x01\x02")                          # the member's central-directory entry
    data[entry + 20:entry + 28] = (2**31 + len(header.getvalue())).to_bytes(4, "little") * 2   # both sizes
    (tmp_path / "liar.npz").write_bytes(data)
    with pytest.raises(ValueError, match=r"member 'w.npy' is listed as 2,147,483,776 bytes stored and "
                                         r"2,147,483,776 unpacked in a \d+-byte file: damaged"):
        mdl.load(tmp_path / "liar.npz")


def test_an_archive_listing_fewer_members_than_it_declares_is_refused(tmp_path):
    """A flipped byte in an entry's comment length made zipfile read that comment over the next entries:
    load returned fewer arrays, silently."""
    path = tmp_path / "short.npz"
    mdl.save({"a": np.ones(2), "b": np.zeros(2), "c": np.arange(2)}, path)
    data = bytearray(path.read_bytes())
    data[data.find(b"PK\x01\x02") + 33] = 0x01      # high byte of the first entry's comment length
    path.write_bytes(data)
    with pytest.raises(ValueError, match=r"short.npz'\): the archive declares 3 members but its directory lists 1"):
        mdl.load(path)


def test_a_repeated_member_is_refused(tmp_path):
    """An archive holding "w.npy" twice gave only the last one, silently."""
    import io
    import zipfile
    array = io.BytesIO()
    np.lib.format.write_array(array, np.ones(2))
    _npz_with_member(tmp_path / "twice.npz", "w.npy", array.getvalue())
    with pytest.warns(UserWarning, match="Duplicate name"), zipfile.ZipFile(tmp_path / "twice.npz", "a") as archive:
        archive.writestr("w.npy", array.getvalue())
    with pytest.raises(ValueError, match="twice.npz'\\): member 'w.npy' appears more than once"):
        mdl.load(tmp_path / "twice.npz")


def test_the_declared_count_is_found_after_a_comment_and_in_a_zip64_record(tmp_path):
    import zipfile
    path = tmp_path / "commented.npz"
    mdl.save({"a": np.ones(2), "b": np.zeros(2)}, path)
    with zipfile.ZipFile(path, "a") as archive:
        archive.comment = b"an archive comment follows the end record"
    assert mdl.load(path).keys() == {"a", "b"}
    with zipfile.ZipFile(tmp_path / "many.npz", "w") as archive:    # 65,537 entries: zip64 holds the count
        for i in range(2**16 + 1):
            archive.writestr(str(i), b"")
    with pytest.raises(ValueError, match="member '0' is not an .npy array"):   # the count matched
        mdl.load(tmp_path / "many.npz")


def test_a_text_file_is_not_called_a_pickle(tmp_path):
    (tmp_path / "text.npz").write_text("just some text\n")
    with pytest.raises(ValueError, match="corrupt or truncated file") as info:
        mdl.load(tmp_path / "text.npz")
    assert "pickle" not in str(info.value)


def test_a_killed_writers_temporary_is_removed_by_the_next_lock_holder(tmp_path):
    from minidl.training.run_lock import acquire
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / ".tmp-checkpoint.npz-ab12_x9z").write_bytes(b"partial")
    (folder / ".tmp-notes").write_text("not ours")
    (folder / ".lock").write_text('{"pid": 999999999, "host": "nowhere", "purpose": "minidl train"}\n')
    with acquire(folder, "test") as lock:
        assert lock.stale is not None and ".tmp-checkpoint.npz-ab12_x9z" in lock.stale
    assert sorted(p.name for p in folder.iterdir()) == [".tmp-notes"]


def test_saving_through_a_symbolic_link_writes_its_target(tmp_path):
    """os.replace over the link replaced the link itself by a regular file and left its target as it was;
    np.savez and torch.save write through the link, as open() does."""
    (tmp_path / "run").mkdir()
    target = tmp_path / "run" / "model.npz"
    mdl.save({"w": np.zeros(2)}, target)
    link = tmp_path / "latest.npz"
    link.symlink_to(os.path.join("run", "model.npz"))
    mdl.save({"w": np.ones(2)}, link)
    assert link.is_symlink()
    np.testing.assert_array_equal(mdl.load(target)["w"], np.ones(2))
    dangling = tmp_path / "next.npz"
    dangling.symlink_to(os.path.join("run", "next.npz"))
    mdl.save({"w": np.ones(3)}, dangling)
    assert dangling.is_symlink() and mdl.load(tmp_path / "run" / "next.npz")["w"].shape == (3,)
    assert sorted(os.listdir(tmp_path / "run")) == ["model.npz", "next.npz"]


def test_saving_to_a_fifo_writes_into_it(tmp_path):
    """A device or FIFO (saving to /dev/null) was replaced by a regular file (the rename needs only write
    access to its folder); np.savez and torch.save write into it."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)      # a reader, so that opening for writing returns
    try:
        mdl.save({"w": np.arange(3)}, fifo)
        data = os.read(reader, 1 << 16)
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and os.listdir(tmp_path) == ["pipe"]
    assert data.startswith(b"PK\x03\x04")


def test_a_bytes_path_is_a_path(tmp_path):
    """save(b"...") failed on "can only concatenate str (not "bytes") to str", load(b"...") on "'bytes' object
    has no attribute 'seek'"; open() and np.load take a bytes path."""
    path = os.fsencode(tmp_path / "w.npz")
    mdl.save({"w": np.arange(3)}, path)
    np.testing.assert_array_equal(mdl.load(path)["w"], np.arange(3))
    with pytest.raises(TypeError, match="NoneType"):
        mdl.save({"w": np.arange(3)}, None)
