"""``python -m truncmix``: the ``truncmix`` command (see :mod:`truncmix.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
