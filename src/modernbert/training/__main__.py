"""``python -m modernbert.training``: the pretraining command line (same as ``modernbert pretrain``)."""

import sys

from .pretrain import main

sys.exit(main())
