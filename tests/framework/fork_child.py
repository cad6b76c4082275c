"""Fault injection: fork() while another thread holds a lock, which the child inherits held by a thread it
does not have."""
import os
import signal
import threading


def status_of_a_child_forked_while(hold, child) -> int:
    """Start a thread that enters ``hold()`` (a context manager) and waits inside it; fork(); in the child run
    ``child()``, whose return is the exit code (0: all went right; an exception exits 1, a hang is killed by
    an alarm after 20 s); then let the thread leave. Returns the child's wait status."""
    holding, release = threading.Event(), threading.Event()

    def hold_until_released():
        with hold():
            holding.set()
            release.wait()

    holder = threading.Thread(target=hold_until_released)
    holder.start()
    holding.wait()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            signal.alarm(20)
            code = child()
        finally:
            os._exit(code)
    release.set()
    holder.join()
    _, status = os.waitpid(pid, 0)
    return status
