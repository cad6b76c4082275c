"""`python -m minidl` is the `minidl` command."""
from minidl.cli import main

raise SystemExit(main())
