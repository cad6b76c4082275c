"""The glibc malloc tuning applied at import: on when possible, off when the user says so."""
import ctypes.util
import sys

import pytest

from minidl import autograd_allocator


def test_user_opt_out_and_own_settings_are_respected(monkeypatch):
    monkeypatch.setenv("MINIDL_MALLOC_TUNING", "0")
    assert autograd_allocator.tune_malloc() is False
    monkeypatch.delenv("MINIDL_MALLOC_TUNING")
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "1000000")
    assert autograd_allocator.tune_malloc() is False


@pytest.mark.skipif(not sys.platform.startswith("linux") or "musl" in (ctypes.util.find_library("c") or ""),
                    reason="glibc only")
def test_applied_on_glibc(monkeypatch):
    for key in list(__import__("os").environ):
        if key.startswith("MALLOC_") or key == "MINIDL_MALLOC_TUNING":
            monkeypatch.delenv(key)
    assert autograd_allocator.tune_malloc() is True
