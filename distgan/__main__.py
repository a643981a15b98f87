"""``python -m distgan`` (what ``accelerate launch -m distgan train`` runs)."""

import sys

from distgan.cli import main

sys.exit(main())
