"""`minidl bench train --profile`: every kernel call of the step filed under its part, with its traffic bound."""
import numpy as np
import pytest

from minidl import _core
from minidl.bench import train_problem, train_profile


def test_gemm_cost_counts_operands_output_and_accumulation():
    x, dy = np.ones((10, 784), np.float32), np.ones((10, 1000), np.float32)
    nbytes, flops = train_profile._gemm_cost(x, dy, trans_a=True)              # dW = xᵀ dy: 784 x 1000
    assert flops == 2 * 784 * 1000 * 10
    assert nbytes == 4 * (784 * 10 + 10 * 1000 + 784 * 1000)
    nbytes_acc, _ = train_profile._gemm_cost(x, dy, trans_a=True, out=None, alpha=-0.1, beta=1.0)
    assert nbytes_acc == nbytes + 4 * 784 * 1000                              # W read as well as written
    w = np.ones((784, 1000), np.float64)                                      # dX = dy Wᵀ: 10 x 784
    assert train_profile._gemm_cost(dy.astype(np.float64), w, trans_b=True) == (
        8 * (10 * 1000 + 1000 * 784 + 10 * 784), 2 * 10 * 784 * 1000)
    u, v = np.ones((6, 784), np.float32), np.ones((6, 1000), np.float32)    # the last step's batch of 6
    assert train_profile._fused_update_cost(x, w.astype(np.float32), u, v) == (
        4 * (10 * 784 + 6 * (784 + 1000) + 2 * 784 * 1000 + 10 * 1000), 2 * (10 + 6) * 784 * 1000)


def test_machine_limits_are_measured_on_every_thread_after_a_back_off():
    """A back-off to one thread just before the measurement gave the one-thread GEMM rate (87 GFLOP/s where
    two threads give 156-161), and a bound above the step it bounds."""
    if not _core.openmp_enabled():
        pytest.skip("single-threaded build: no back-off")
    _core.set_num_threads(2)
    _core._kernels._set_test_clock(None)
    _core._kernels._reset_contention_state()
    try:
        for _ in range(6):                             # regions stalled with nothing measured: a back-off
            _core._kernels._note_team(0.0, 0.0, 0.0)   # of 10 ms doubled five times, 320 ms
            _core._kernels._note_team(0.010)
        assert _core.effective_num_threads() == 1
        _core._kernels._take_largest_team()
        train_profile.machine_limits(10**5, repeats=1)
        assert _core._kernels._take_largest_team() == 2
    finally:
        _core._kernels._reset_contention_state()


def test_profile_files_every_kernel_call_and_bounds_it(capsys):
    split = train_profile.profile(batch=10, threads=1, steps=3, top=3)
    layers = len(train_problem.SIZES) - 1
    parts = split["parts"]
    assert parts["input_gradient"]["calls"] == layers - 1          # no dX for the input layer
    # Batch 10: the five 1000-wide weight gradients stay pending and SGD leaves their updates to the next
    # forward product (minidl.deferred_update); the 1000 x 10 output layer's (10·1010 > 10·1000) is
    # materialized in backward and applied by axpby.
    assert parts["forward_update"]["calls"] == layers - 1 and parts["forward"]["calls"] == 1
    assert parts["update_gemm"]["calls"] == 0 and parts["weight_gradient"]["calls"] == 1
    assert parts["sigmoid_forward"]["calls"] == parts["sigmoid_backward"]["calls"] == layers - 1
    for part in parts.values():
        if part["calls"]:
            assert part["seconds"] > 0 and part["bound"] > 0 and part["bytes"] > 0
    assert 0 < split["bound"] < split["total"]
    assert sum(p["seconds"] for p in parts.values()) < split["total"]
    assert split["bandwidth_gb_s"] > 0 and split["gemm_gflop_s"] > 0
    out = capsys.readouterr().out
    assert "bound ms" in out and "X·W applying the last SGD update" in out


def test_profile_table_rest_is_the_headers_rest(capsys):
    """The header said "rest (Python, NumPy) 1.99" and the table's rest row 2.09 ms for the same step: the
    table's took SGD.step's own Python time in too. It now has a row of its own, and the rows add up."""
    split = train_profile.profile(batch=10, threads=1, steps=3, top=1)
    lines = capsys.readouterr().out.splitlines()
    value = {label.strip(): float(ms) for label, ms in (line.rsplit(None, 1) for line in lines
                                                         if line.startswith(("rest:", "SGD.step:")))}
    assert value["rest: Python, NumPy (graph, loss, sums)"] == round(split["rest"], 2)
    parts = split["parts"]
    in_update = parts["update_gemm"]["seconds"] + parts["axpby"]["seconds"]
    assert value["SGD.step: Python around its kernels"] == round(split["update"] - in_update, 2)
