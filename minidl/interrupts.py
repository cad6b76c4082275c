"""SIGTERM handled as Ctrl-C by the commands (`minidl train`, `minidl reproduce`, `minidl bench train`):
``kill``, ``timeout``, Slurm and systemd stop a run the way Ctrl-C does, so one ``except KeyboardInterrupt``
saves and reports for both. The handler raises KeyboardInterrupt itself rather than re-sending SIGINT: a
process started with SIGINT ignored (``cmd &`` in a script) would ignore that and run on. `interrupts_held`
makes a write that must finish (a study's final status) wait out a second Ctrl-C."""
from __future__ import annotations

import contextlib
import signal
import threading

__all__ = ["sigterm_as_ctrl_c", "interrupts_held"]

_held: list | None = None       # inside interrupts_held: the signals that arrived meanwhile


def _interrupt(signum, frame):
    if _held is not None:
        _held.append(signum)
        return
    raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_as_ctrl_c():
    """Inside the block SIGTERM raises KeyboardInterrupt, and so does SIGINT where Python's default handler
    had it (one handler for both, which `interrupts_held` can hold); the previous handlers come back on
    exit. Off the main thread, where Python cannot set signal handlers, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, _interrupt)}
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, _interrupt)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def interrupts_held():
    """Inside the block a Ctrl-C or SIGTERM handled by `sigterm_as_ctrl_c` waits: the handler notes it, and
    the block's end raises KeyboardInterrupt once what it wrote is whole (a second Ctrl-C cut a study's final
    status short). No handler is swapped, so none can be left behind by a signal landing mid-swap; a signal
    ignored stays ignored, and outside `sigterm_as_ctrl_c` nothing is held."""
    global _held
    if _held is not None:                       # nested: the outer block holds and raises
        yield
        return
    _held = []
    try:
        yield
    finally:
        arrived, _held = _held, None
        if arrived:
            raise KeyboardInterrupt
