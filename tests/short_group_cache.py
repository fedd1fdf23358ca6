"""Run the app with a short user-group cache, to see a membership change end to end.

`python -m tests.short_group_cache run --http ...` with CREDIT_TEST_GROUP_CACHE_SECONDS set:
the app's UserGroups keep a group's members that long instead of minutes. Tests only.
"""

from __future__ import annotations

import functools
import os
import sys


def main() -> int:
    from bot.cli import main as bot_main  # noqa: PLC0415 - after the patch below
    from bot.slack import app  # noqa: PLC0415
    from bot.slack.usergroups import UserGroups  # noqa: PLC0415

    seconds = float(os.environ["CREDIT_TEST_GROUP_CACHE_SECONDS"])
    app.UserGroups = functools.partial(UserGroups, cache_seconds=seconds)  # type: ignore[misc]
    return bot_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
