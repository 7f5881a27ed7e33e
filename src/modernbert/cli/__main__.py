"""``python -m modernbert.cli``: the ``modernbert`` command."""

from .entry import main

if __name__ == "__main__":
    raise SystemExit(main())
