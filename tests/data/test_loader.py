"""ArrayDataset / DataLoader / train_val_split."""
import numpy as np
import pytest

from minidl.data import ArrayDataset, DataLoader, train_val_split


def _data(n=23):
    images = (np.arange(n * 6) % 256).astype(np.uint8).reshape(n, 2, 3)
    labels = np.arange(n) % 4
    return images, labels


def test_an_empty_dataset_or_subset_gives_empty_arrays_of_its_feature_width():
    """reshape(0, -1) cannot be solved: arrays() of an empty subset raised NumPy's 'cannot reshape array of
    size 0'; PyTorch indexes an empty batch as (0, D)."""
    images, labels = _data()
    x, y = ArrayDataset(images, labels).subset([]).arrays()
    assert x.shape == (0, 6) and x.dtype == np.float32 and y.shape == (0,) and y.dtype == np.int64
    x, _ = ArrayDataset(np.zeros((0, 3), np.float32), np.zeros(0, np.int64)).arrays()
    assert x.shape == (0, 3)


def test_batches_cover_each_example_once_and_keep_last():
    images, labels = _data()
    loader = DataLoader((images, labels), batch_size=5, seed=1)
    batches = list(loader)
    assert len(loader) == len(batches) == 5 and [len(y) for _, y in batches] == [5, 5, 5, 5, 3]
    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches])
    assert x.dtype == np.float32 and x.shape == (23, 6) and y.dtype == np.int64
    # Same examples, shuffled, scaled by 1/255, images and labels kept together.
    order = np.lexsort((y, x[:, 0]))
    reference = images.reshape(23, 6).astype(np.float32) / 255
    ref_order = np.lexsort((labels, reference[:, 0]))
    np.testing.assert_allclose(x[order], reference[ref_order], rtol=1e-6)
    np.testing.assert_array_equal(y[order], labels[ref_order])
    assert not np.array_equal(y, labels)  # shuffled


def test_drop_last():
    loader = DataLoader(_data(), batch_size=5, drop_last=True)
    assert len(loader) == 4 and all(len(y) == 5 for _, y in loader)


def test_shuffle_is_seeded_per_epoch():
    a = DataLoader(_data(), batch_size=4, seed=5)
    b = DataLoader(_data(), batch_size=4, seed=5)
    first_a = np.concatenate([y for _, y in a])
    first_b = np.concatenate([y for _, y in b])
    np.testing.assert_array_equal(first_a, first_b)
    assert a.epoch == 1
    assert not np.array_equal(a.order(0), a.order(1))
    assert not np.array_equal(a.order(0), DataLoader(_data(), batch_size=4, seed=6).order(0))


def test_a_loop_that_stops_early_still_gets_a_new_order_next_time():
    """The epoch advanced only when an iteration ran to its end: a fixed number of steps per pass (break,
    zip) repeated epoch 0's order forever, silently."""
    loader = DataLoader(_data(), batch_size=4, seed=5)
    firsts = []
    for _ in range(3):
        for _, y in loader:
            firsts.append(y)
            break
    assert loader.epoch == 3
    for epoch, y in enumerate(firsts):
        np.testing.assert_array_equal(y, next(loader.batches(epoch))[1])
    assert not np.array_equal(firsts[0], firsts[1])


def test_batches_from_a_start_index_are_the_tail_of_the_epoch():
    loader = DataLoader(_data(), batch_size=4, seed=2)
    full = list(loader.batches(3))
    tail = list(loader.batches(3, start=2))
    assert len(tail) == len(full) - 2
    for (xa, ya), (xb, yb) in zip(full[2:], tail):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


def test_no_shuffle_keeps_order():
    images, labels = _data()
    y = np.concatenate([y for _, y in DataLoader((images, labels), batch_size=7, shuffle=False)])
    np.testing.assert_array_equal(y, labels)


def test_float_images_pass_through_and_flatten_off():
    images = np.random.default_rng(0).random((6, 3, 3))
    dataset = ArrayDataset(images, np.zeros(6, dtype=np.int64), flatten=False)
    x, _ = dataset.batch([4, 1])
    assert x.dtype == np.float32 and x.shape == (2, 3, 3)
    np.testing.assert_allclose(x, images[[4, 1]], rtol=1e-6)


def test_split_is_disjoint_covering_and_shares_memory():
    images, labels = _data(100)
    dataset = ArrayDataset(images, labels)
    train, val = train_val_split(dataset, val_size=0.2, seed=0)
    assert (len(train), len(val)) == (80, 20)
    assert np.intersect1d(train.indices, val.indices).size == 0
    assert np.union1d(train.indices, val.indices).size == 100
    assert train.images is images and val.images is images        # no copy
    again, _ = train_val_split(dataset, val_size=20, seed=0)
    np.testing.assert_array_equal(again.indices, train.indices)
    other, _ = train_val_split(dataset, val_size=20, seed=1)
    assert not np.array_equal(other.indices, train.indices)
    # A subset of a subset indexes the original arrays.
    x, y = train.subset([0, 1]).batch([1])
    np.testing.assert_array_equal(y, labels[train.indices[1:2]])


@pytest.mark.parametrize("make, error", [
    (lambda: ArrayDataset(np.zeros((3, 2), np.uint8), np.zeros(4, np.int64)), ValueError),
    (lambda: ArrayDataset(np.zeros((3, 2), np.uint8), np.zeros(3, np.float32)), TypeError),
    (lambda: ArrayDataset(np.zeros((3, 2), np.int32), np.zeros(3, np.int64)), TypeError),
    (lambda: ArrayDataset(np.zeros((3, 2), np.uint8), np.zeros(3, np.int64), indices=[0, 3]), ValueError),
    (lambda: DataLoader(_data(), batch_size=0), ValueError),
    (lambda: DataLoader(_data(), batch_size=2, seed=-1), ValueError),
    (lambda: DataLoader(_data(), batch_size=50, drop_last=True), ValueError),
    (lambda: DataLoader([1, 2], batch_size=2), TypeError),
    (lambda: train_val_split(ArrayDataset(*_data()), val_size=1.5), ValueError),
    (lambda: train_val_split(ArrayDataset(*_data()), val_size=23), ValueError),
])
def test_bad_arguments(make, error):
    with pytest.raises(error):
        make()


def test_default_seeds_follow_manual_seed():
    import minidl as mdl
    dataset = ArrayDataset(np.zeros((50, 2), np.uint8), np.arange(50))

    def draws(seed):
        mdl.manual_seed(seed)
        train, _ = train_val_split(dataset, 10)
        return DataLoader(dataset, 5).order(0), train.indices

    (order_a, split_a), (order_b, split_b), (order_c, split_c) = draws(1), draws(2), draws(1)
    np.testing.assert_array_equal(order_a, order_c)
    np.testing.assert_array_equal(split_a, split_c)
    assert not np.array_equal(order_a, order_b)
    assert not np.array_equal(split_a, split_b)


def test_a_numpy_float_val_size_is_a_fraction():
    """np.float32(0.5) was taken as a count (int(0.5) = 0: 'validation size 0')."""
    train, val = train_val_split(ArrayDataset(*_data()), np.float32(0.5), seed=0)
    assert (len(val), len(train)) == (12, 11)                 # 23 examples, round(11.5) for validation
    with pytest.raises(TypeError, match="count or a fraction"):
        train_val_split(ArrayDataset(*_data()), "0.5", seed=0)


@pytest.mark.parametrize("start", [-1, 7, 1.5, True])
def test_a_start_outside_the_epoch_is_refused(start):
    """start=-1 failed deep inside with 'cannot reshape array of size 0'."""
    loader = DataLoader(_data(), batch_size=4, seed=2)
    with pytest.raises(ValueError, match=f"start must be a batch index from 0 to {len(loader)}"):
        next(loader.batches(0, start=start))
    assert list(loader.batches(0, start=len(loader))) == []


def test_subset_and_batch_take_a_boolean_mask_and_refuse_other_numbers():
    """subset(y == 2) read the mask as positions 0 and 1 (six examples labelled 0/1 for two labelled 2), and
    subset([2.9]) as position 2."""
    images = np.arange(6 * 4, dtype=np.float32).reshape(6, 4)
    labels = np.array([0, 2, 1, 2, 0, 1])
    data = ArrayDataset(images, labels)
    twos = data.subset(labels == 2)
    assert len(twos) == 2 and list(twos.batch(np.arange(2))[1]) == [2, 2]
    np.testing.assert_array_equal(twos.subset([True, False]).batch([0])[0], images[[1]])
    assert list(data.subset([-1, 0]).batch([0, 1])[1]) == [1, 0] and len(data.subset([])) == 0
    np.testing.assert_array_equal(data.batch(labels == 1)[0], images[[2, 5]])
    for bad, said in (([2.9], "integer positions or a boolean mask"), ([6], "out of bounds"),
                      (labels[:5] == 2, "boolean index did not match"), ([[0, 1]], "1-D")):
        with pytest.raises(IndexError, match=said):
            data.subset(bad)


def test_loader_refuses_bools_and_negative_epochs():
    data = ArrayDataset(np.zeros((4, 2), np.float32), np.zeros(4, np.int64))
    for bad in (dict(batch_size=True), dict(batch_size=2, seed=True)):
        with pytest.raises(ValueError, match="must be a"):
            DataLoader(data, **bad)
    with pytest.raises(ValueError, match="epoch must be a non-negative int, got -1"):
        next(DataLoader(data, 2, seed=0).batches(-1))


@pytest.mark.parametrize("items", [1, 3])
def test_a_tuple_dataset_must_be_a_pair(items):
    """(images, labels, labels) was read as ArrayDataset(images, labels, indices=labels): a silent subset
    (examples repeated or left out); (images,) failed inside ArrayDataset with a missing argument."""
    images, labels = np.zeros((6, 2), np.float32), np.arange(6) % 2
    with pytest.raises(TypeError, match=f"must be \\(images, labels\\), got {items} items"):
        DataLoader((images, labels, labels)[:items], batch_size=2)


def test_uint8_images_are_scaled_exactly_by_255():
    """x * float32(1/255) is 1 ulp off x / 255 for 126 of the 256 values; torchvision's ToTensor
    (x.float().div(255)) and minidl.experiments' own loading divide."""
    values = np.arange(256, dtype=np.uint8)
    x, _ = next(iter(DataLoader((values[:, None], np.zeros(256, np.int64)), batch_size=256, shuffle=False)))
    np.testing.assert_array_equal(x[:, 0], values.astype(np.float32) / np.float32(255))


def test_a_loader_without_shuffle_leaves_the_global_generator_alone():
    """DataLoader(test, 1000, shuffle=False) drew an unused seed from minidl's generator, so a test loader
    made between manual_seed and the model changed the model's weights; PyTorch's SequentialSampler draws
    nothing."""
    import minidl as mdl
    from minidl import random

    mdl.manual_seed(5)
    expected = random.generator().random(3)
    mdl.manual_seed(5)
    loader = DataLoader(_data(), batch_size=4, shuffle=False)
    np.testing.assert_array_equal(random.generator().random(3), expected)
    assert loader.seed == 0 and [y.tolist() for _, y in loader][0] == [0, 1, 2, 3]
