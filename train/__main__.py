"""`python -m sleuth.train`: `sleuth train` in a process of its own (how the app runs it)."""

import sys

from .cli import main

sys.exit(main())
