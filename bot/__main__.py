"""`python -m bot` is `credit-bot`."""

import sys

from bot.cli import main

sys.exit(main())
