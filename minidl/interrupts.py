"""SIGTERM handled as Ctrl-C by the commands (`minidl train`, `minidl reproduce`, `minidl bench train`):
``kill``, ``timeout``, Slurm and systemd stop a run the way Ctrl-C does, so one ``except KeyboardInterrupt``
saves and reports for both. The handler raises KeyboardInterrupt itself rather than re-sending SIGINT: a
process started with SIGINT ignored (``cmd &`` in a script) would ignore that and run on."""
from __future__ import annotations

import contextlib
import signal
import threading

__all__ = ["sigterm_as_ctrl_c"]


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
