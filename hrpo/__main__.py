"""`python -m hrpo ...`: see hrpo/cli.py."""
import sys

from .cli import main

sys.exit(main())
