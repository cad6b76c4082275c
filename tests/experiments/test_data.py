"""The study's data choice: Fashion-MNIST when found, else Shapeset-3x2, with the reason recorded."""
import numpy as np
import pytest

from minidl.data import datasets, write_idx
from minidl.experiments.data import VALIDATION_SIZE, check_dataset, load_study_data


def test_auto_falls_back_to_shapeset_and_says_why(monkeypatch):
    def missing(*args, **kwargs):
        raise datasets.DatasetNotFoundError("fashion-mnist not found; looked in /nowhere")

    monkeypatch.setattr(datasets, "dataset_files", missing)
    data = load_study_data("auto", train_examples=200)
    assert data.name == "shapeset" and data.n_classes == 9
    assert "Fashion-MNIST was not found" in data.reason and "/nowhere" in data.reason
    assert data.x_train.shape == (200, 1024) and data.x_valid.shape == (VALIDATION_SIZE, 1024)
    assert data.x_train.dtype == np.float32 and 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0
    assert data.majority_error == pytest.approx(1 - np.mean(data.y_test == np.bincount(data.y_train).argmax()))


def test_auto_fallback_says_that_minidl_data_names_no_folder(tmp_path, monkeypatch):
    """MINIDL_DATA set to a folder that does not exist: the study fell back to Shapeset with a reason that
    did not mention it."""
    typo = tmp_path / "typo"
    monkeypatch.setenv("MINIDL_DATA", str(typo))
    monkeypatch.setattr(datasets, "WELL_KNOWN_ROOTS", [tmp_path / "share"])
    with pytest.warns(RuntimeWarning, match=f"MINIDL_DATA={typo} does not exist\\), so the default falls back"):
        data = load_study_data("auto", train_examples=100)
    assert data.name == "shapeset" and f"; MINIDL_DATA={typo} does not exist), so the default" in data.reason


def test_explicit_missing_dataset_raises(tmp_path):
    with pytest.raises(datasets.DatasetNotFoundError):      # an empty folder: no silent fallback
        load_study_data("mnist", data_dir=tmp_path / "empty")
    with pytest.raises(ValueError, match="unknown dataset"):
        load_study_data("cifar")


@pytest.fixture
def tiny_copies(tmp_path, monkeypatch):
    """Two Fashion-MNIST copies of 5 train / 3 test images: ``full`` in the well-known place, holding all
    four files, and ``partial`` holding only the training files, with other labels."""
    monkeypatch.setitem(datasets.SPLIT_SIZES, "train", 5)
    monkeypatch.setitem(datasets.SPLIT_SIZES, "test", 3)
    monkeypatch.delenv("MINIDL_DATA", raising=False)
    monkeypatch.setattr(datasets, "WELL_KNOWN_ROOTS", [tmp_path / "share"])
    full, partial = tmp_path / "share" / "fashion-mnist", tmp_path / "partial"
    for folder, splits, label in ((full, ("train", "t10k"), 1), (partial, ("train",), 7)):
        folder.mkdir(parents=True)
        for prefix in splits:
            n = 5 if prefix == "train" else 3
            write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", np.zeros((n, 28, 28), np.uint8))
            write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", np.full(n, label, np.uint8))
    return full, partial


def test_an_explicit_data_dir_is_used_or_refused_never_mixed(tiny_copies):
    """--data-dir holding only the training files trained on them and tested on the system copy, and the
    results named the system folder; an empty --data-dir silently used the system copy."""
    full, partial = tiny_copies
    for dataset in ("fashion-mnist", "auto"):
        for folder in (partial, partial.parent / "empty"):
            folder.mkdir(exist_ok=True)
            with pytest.raises(datasets.DatasetNotFoundError, match=f"--data-dir {folder}: .*missing|no folder"):
                check_dataset(dataset, folder)
            with pytest.raises(datasets.DatasetNotFoundError):
                load_study_data(dataset, data_dir=folder)
    data = load_study_data("fashion-mnist", data_dir=full)
    assert data.source == str(full) and set(data.y_valid) == {1} and set(data.y_test) == {1}


def test_the_search_takes_all_four_files_from_one_folder(tiny_copies, monkeypatch):
    full, partial = tiny_copies
    monkeypatch.setenv("MINIDL_DATA", str(partial))      # searched first, but holds only half the files
    with pytest.warns(RuntimeWarning, match=f"MINIDL_DATA: {partial} holds only some .*; reading fashion-mnist "
                                            f"from {full}"):
        check_dataset("fashion-mnist")
    data = load_study_data("auto")
    assert data.name == "fashion-mnist" and data.source == str(full) and set(data.y_valid) == {1}


def test_the_check_reads_the_files_the_default_found(tiny_copies, monkeypatch):
    """check_dataset("auto") looked at nothing: an installed but damaged Fashion-MNIST started the study."""
    full, _ = tiny_copies
    check_dataset("auto")
    labels = full / "train-labels-idx1-ubyte.gz"
    write_idx(labels, np.array([0, 1, 2, 3, 12], np.uint8))
    with pytest.raises(ValueError, match=f"^{labels}: labels must lie in 0..9, found 12$"):
        check_dataset("auto")
    monkeypatch.setattr(datasets, "WELL_KNOWN_ROOTS", [])
    check_dataset("auto")                           # nothing found: the study uses Shapeset-3x2
