"""MNIST / Fashion-MNIST lookup and validation, on small fake files and on the real installed files."""
import warnings

import numpy as np
import pytest

from minidl.data import DatasetNotFoundError, find_dataset, load_fashion_mnist, load_mnist, write_idx
from minidl.data import datasets


@pytest.fixture
def small_splits(monkeypatch):
    """Pretend a split holds 5 (train) / 3 (test) images so fake files stay tiny."""
    monkeypatch.setitem(datasets.SPLIT_SIZES, "train", 5)
    monkeypatch.setitem(datasets.SPLIT_SIZES, "test", 3)
    monkeypatch.delenv("MINIDL_DATA", raising=False)
    monkeypatch.setattr(datasets, "_WARNED", set(), raising=False)   # each test sees its warnings


def _write_split(folder, prefix, n, gz=True, labels=None):
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    images = np.arange(n * 28 * 28, dtype=np.int64).reshape(n, 28, 28).astype(np.uint8)
    labels = np.arange(n) % 10 if labels is None else np.asarray(labels)
    write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels.astype(np.uint8))
    return images, labels


def _write_dataset(folder, gz=True, label=None):
    """All four files: 5 training and 3 test images (labels all `label` when given)."""
    train = _write_split(folder, "train", 5, gz, None if label is None else [label] * 5)
    test = _write_split(folder, "t10k", 3, gz, None if label is None else [label] * 3)
    return train, test


def test_root_argument_is_used(tmp_path, small_splits):
    _, (images, labels) = _write_dataset(tmp_path, gz=False)
    got_images, got_labels = load_mnist(tmp_path, split="test")
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    assert got_images.dtype == np.uint8 and got_labels.dtype == np.int64


def test_env_variable_with_dataset_subfolder(tmp_path, small_splits, monkeypatch):
    (images, _), _ = _write_dataset(tmp_path / "fashion-mnist")
    monkeypatch.setenv("MINIDL_DATA", str(tmp_path))
    np.testing.assert_array_equal(load_fashion_mnist()[0], images)


def test_root_wins_over_env(tmp_path, small_splits, monkeypatch):
    _write_dataset(tmp_path / "env" / "mnist", label=1)
    _write_dataset(tmp_path / "arg" / "mnist", label=2)
    monkeypatch.setenv("MINIDL_DATA", str(tmp_path / "env"))
    assert set(load_mnist(tmp_path / "arg")[1]) == {2}
    assert set(load_mnist()[1]) == {1}


def test_not_found_lists_places_and_how_to_get(tmp_path, small_splits, monkeypatch):
    monkeypatch.setenv("MINIDL_DATA", str(tmp_path / "envdir"))
    monkeypatch.setattr(datasets, "WELL_KNOWN_ROOTS", [tmp_path / "share"])
    with pytest.raises(DatasetNotFoundError) as info:
        find_dataset("fashion-mnist", "test", root=tmp_path / "argdir")
    message = str(info.value)
    assert str(tmp_path / "argdir") in message
    assert str(tmp_path / "envdir" / "fashion-mnist") in message
    assert str(tmp_path / "share" / "fashion-mnist") in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert isinstance(info.value, FileNotFoundError)


def test_both_splits_come_from_one_folder(tmp_path, small_splits, monkeypatch):
    """$MINIDL_DATA/fashion-mnist holding only the training files gave load_fashion_mnist(split="train")
    from there and split="test" from the next folder: a model trained on one copy, tested on another."""
    _write_split(tmp_path / "env" / "fashion-mnist", "train", 5, labels=[7] * 5)
    _write_dataset(tmp_path / "share" / "fashion-mnist", label=1)
    monkeypatch.setenv("MINIDL_DATA", str(tmp_path / "env"))
    monkeypatch.setattr(datasets, "WELL_KNOWN_ROOTS", [tmp_path / "share"])
    with pytest.warns(RuntimeWarning, match="env/fashion-mnist holds only some of the fashion-mnist files"):
        assert set(load_fashion_mnist(split="train")[1]) == {1}
    assert set(load_fashion_mnist(split="test")[1]) == {1}
    folder = tmp_path / "share" / "fashion-mnist"
    assert [path.parent for split in ("train", "test") for path in find_dataset("fashion-mnist", split)] == [folder] * 4


# How the official label files begin (LeCun's MNIST; Zalando's Fashion-MNIST, checked against the installed
# files by test_the_installed_fashion_mnist_is_recognized)
FIRST_LABELS = {"mnist": ([5, 0, 4, 1, 9, 2, 1, 3, 1, 4], [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]),
                "fashion-mnist": ([9, 0, 0, 3, 0, 2, 7, 2, 5, 5], [9, 2, 1, 1, 6, 1, 4, 6, 5, 7])}


def _labelled_as(folder, name):
    """Four files whose label files begin as `name`'s official ones (other labels: any `name` not listed)."""
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n, first in zip(("train", "t10k"), (60_000, 10_000), FIRST_LABELS.get(name, ([1] * 10,) * 2)):
        labels = np.zeros(n, np.uint8)
        labels[:10] = first
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", np.zeros((1, 28, 28), np.uint8))  # never read here
    return folder


def test_a_bare_minidl_data_folder_is_read_only_as_the_dataset_it_holds(tmp_path, small_splits, monkeypatch):
    """$MINIDL_DATA holding MNIST's four files (the same names as Fashion-MNIST's) was read as Fashion-MNIST
    although Fashion-MNIST was installed."""
    env, share = _labelled_as(tmp_path / "env", "mnist"), _labelled_as(tmp_path / "share" / "fashion-mnist",
                                                                        "fashion-mnist")
    monkeypatch.setenv("MINIDL_DATA", str(env))
    monkeypatch.setattr(datasets, "WELL_KNOWN_ROOTS", [tmp_path / "share"])
    with pytest.warns(RuntimeWarning, match=f"MINIDL_DATA={env} holds MNIST, not Fashion-MNIST .*; reading "
                                            f"fashion-mnist from {share}$"):
        assert find_dataset("fashion-mnist", "test")[0].parent == share
    assert find_dataset("mnist", "test")[0].parent == env
    assert datasets.dataset_files("fashion-mnist", env)["train"][0].parent == env      # an explicit root: as it is

    share.rename(tmp_path / "gone")
    with pytest.raises(DatasetNotFoundError) as info:
        find_dataset("fashion-mnist")
    first = str(info.value).splitlines()[0]
    assert first.startswith("no folder holds the fashion-mnist files") and f"MINIDL_DATA={env} holds MNIST" in first

    other = _labelled_as(tmp_path / "other", "neither")             # files of one's own: neither dataset's
    monkeypatch.setenv("MINIDL_DATA", str(other))
    for name in ("mnist", "fashion-mnist"):
        with pytest.raises(DatasetNotFoundError, match=f"not the official .*go in {other / name}/"):
            find_dataset(name)
    monkeypatch.setenv("MINIDL_DATA", str(other.rename(tmp_path / "fashion-mnist")))  # named for the dataset
    assert find_dataset("fashion-mnist")[0].parent == tmp_path / "fashion-mnist"


def test_the_installed_fashion_mnist_is_recognized():
    folder = datasets.Path("/usr/share/datasets/fashion-mnist")
    try:
        found = datasets.dataset_files("fashion-mnist", folder, search=False)
    except DatasetNotFoundError as error:
        pytest.skip(f"Fashion-MNIST is not installed in {folder}: {error}")
    labels = {split: load_fashion_mnist(folder, split)[1][:10].tolist() for split in ("train", "test")}
    assert (labels["train"], labels["test"]) == FIRST_LABELS["fashion-mnist"]
    assert datasets._holds(found) == "fashion-mnist"


@pytest.mark.parametrize("kind", ["does not exist", "is not a folder"])
def test_minidl_data_naming_no_folder_is_said(tmp_path, small_splits, monkeypatch, kind):
    """MINIDL_DATA set to a folder that does not exist was skipped without a word: the data came from
    elsewhere, or the not-found error did not mention it."""
    typo = tmp_path / "typo"
    if kind == "is not a folder":
        typo.write_text("not a folder")
    share = tmp_path / "share" / "fashion-mnist"
    _write_dataset(share, label=1)
    monkeypatch.setenv("MINIDL_DATA", str(typo))
    monkeypatch.setattr(datasets, "WELL_KNOWN_ROOTS", [tmp_path / "share"])
    with pytest.warns(RuntimeWarning, match=f"^MINIDL_DATA={typo} {kind}; reading fashion-mnist from {share}$"):
        assert set(load_fashion_mnist(split="train")[1]) == {1}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_fashion_mnist(split="test")                        # said once, not for every load
        assert set(load_fashion_mnist(share, split="test")[1]) == {1}     # an explicit root is used first
    with pytest.raises(DatasetNotFoundError) as info:
        find_dataset("mnist")
    assert str(info.value).splitlines()[0].endswith(f"; MINIDL_DATA={typo} {kind}.")


def test_a_root_or_minidl_data_holding_only_some_files_is_said(tmp_path, small_splits, monkeypatch):
    share = tmp_path / "share" / "mnist"
    _write_dataset(share, label=1)
    _write_split(tmp_path / "env" / "mnist", "train", 5)
    _write_split(tmp_path / "arg", "t10k", 3)
    monkeypatch.setenv("MINIDL_DATA", str(tmp_path / "env"))
    monkeypatch.setattr(datasets, "WELL_KNOWN_ROOTS", [tmp_path / "share"])
    with pytest.warns(RuntimeWarning) as caught:
        assert set(load_mnist(tmp_path / "arg")[1]) == {1}
    assert len(caught) == 1 and str(caught[0].message) == (
        f"{tmp_path / 'arg'} holds only some of the mnist files: train-images-idx3-ubyte[.gz], "
        "train-labels-idx1-ubyte[.gz] missing; "
        f"MINIDL_DATA: {tmp_path / 'env' / 'mnist'} holds only some of the mnist files: t10k-images-idx3-ubyte[.gz], "
        f"t10k-labels-idx1-ubyte[.gz] missing; reading mnist from {share}")
    with pytest.warns(RuntimeWarning, match=f"^root={tmp_path / 'nowhere'} does not exist; MINIDL_DATA: "):
        load_mnist(tmp_path / "nowhere")


def test_half_present_split_is_not_found(tmp_path, small_splits):
    _write_split(tmp_path, "train", 5)
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetNotFoundError):
        find_dataset("mnist", "train", root=tmp_path)


@pytest.mark.parametrize("make,what", [
    (lambda path: path.mkdir(), "is a folder, not a file"),
    (lambda path: path.symlink_to(path.name), "is a symbolic link loop"),
    (lambda path: path.symlink_to("elsewhere.gz"), "is a broken symbolic link"),
])
def test_an_entry_that_is_not_a_file_is_named_not_called_missing(tmp_path, small_splits, make, what):
    _write_dataset(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte.gz").unlink()
    make(tmp_path / "t10k-images-idx3-ubyte.gz")
    with pytest.raises(DatasetNotFoundError) as info:
        datasets.dataset_files("mnist", tmp_path, search=False)
    message = str(info.value)
    assert f"{tmp_path} holds only some of the mnist files: t10k-images-idx3-ubyte.gz {what};" in message
    assert "missing" not in message and len(message.splitlines()) == 1
    with pytest.raises(DatasetNotFoundError, match=f"t10k-images-idx3-ubyte.gz {what}"):
        load_mnist(tmp_path)


def test_wrong_count_names_the_file(tmp_path, small_splits):
    _write_split(tmp_path, "train", 4)
    _write_split(tmp_path, "t10k", 3)
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz: expected 5 28x28 uint8 images"):
        load_mnist(tmp_path)


def test_label_out_of_range_names_the_file(tmp_path, small_splits):
    _write_split(tmp_path, "train", 5, labels=[0, 1, 2, 3, 12])
    _write_split(tmp_path, "t10k", 3)
    with pytest.raises(ValueError, match="train-labels-idx1-ubyte.gz: labels must lie in 0..9, found 12"):
        load_mnist(tmp_path)


def test_debian_location_is_searched():
    assert datasets.Path("/usr/share/datasets") in datasets.WELL_KNOWN_ROOTS


def test_bad_arguments():
    with pytest.raises(ValueError, match="split"):
        load_mnist(split="validation")
    with pytest.raises(ValueError, match="unknown dataset"):
        find_dataset("cifar10")


def test_an_unhashable_split_or_name_is_refused_by_name():
    """split=["train"] raised "unhashable type: 'list'" from the lookup in the table of splits."""
    with pytest.raises(ValueError, match=r"unknown split \['train'\]"):
        load_mnist(split=["train"])
    with pytest.raises(ValueError, match=r"unknown dataset \['mnist'\]"):
        datasets.dataset_files(["mnist"])


def test_real_fashion_mnist_files():
    try:
        find_dataset("fashion-mnist", "test")
    except DatasetNotFoundError as error:
        pytest.skip(f"Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist): {error}")
    images, labels = load_fashion_mnist(split="test")
    assert images.shape == (10_000, 28, 28) and images.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(labels, minlength=10), [1000] * 10)  # balanced test set
