"""`python -m bot.demo` is `credit-bot demo`."""

import sys

from bot.demo import main

sys.exit(main())
