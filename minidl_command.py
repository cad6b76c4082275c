"""The `minidl` console command (pyproject.toml's entry point): runs minidl.cli.main.

It lives outside the `minidl` package because importing anything in the package first runs the package's
own imports (NumPy, the compiled core: a few tenths of a second), where a Ctrl-C gave a KeyboardInterrupt
traceback; here it ends the command with one line and exit status 130, as an interrupted run does.
"""
import sys


def main() -> int:
    try:
        from minidl.cli import main as run
    except KeyboardInterrupt:
        print("minidl: interrupted while starting; nothing was done", file=sys.stderr)
        return 130
    return run()


if __name__ == "__main__":
    sys.exit(main())
