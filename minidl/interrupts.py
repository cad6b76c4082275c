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


def _interrupt(signum, frame):
    raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_as_ctrl_c():
    """Inside the block SIGTERM raises KeyboardInterrupt; the previous handler comes back on exit. Off the
    main thread, where Python cannot set signal handlers, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def interrupts_held():
    """Inside the block Ctrl-C and SIGTERM wait: the first that arrives is delivered again, to the handler
    the block found, as the block ends (a KeyboardInterrupt once the write is done, where it would have cut
    the write short). A signal ignored stays ignored; off the main thread nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived = []
    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(signum) is not signal.SIG_IGN:
            previous[signum] = signal.signal(signum, lambda signum, frame: arrived.append(signum))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if arrived:
            signal.raise_signal(arrived[0])
