"""``python -m nao`` is the ``nao`` command."""

import sys

from nao.cli import main

sys.exit(main())
