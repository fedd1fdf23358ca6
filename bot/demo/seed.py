"""Who and what the demo starts with: its people, its channel, its SMS Partner accounts.

Every id here is made up and every balance is play money. The people are Slack users as the
app sees them (ids only); their names are for the page, which draws `<@U…>` as `@name`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Person:
    user_id: str
    name: str
    role: str  # what the page says they are


@dataclass(frozen=True)
class SubAccount:
    token: str
    email: str
    balance: Decimal
    # SMS Partner carries out its transfers but its answers never reach the app in time:
    # the way to see an outcome end `unknown` and be settled by hand.
    answers: bool = True


TEAM_ID = "T0DEMO"
TEAM_DOMAIN = "credit-bot-demo"
BOT_USER_ID = "U0CREDITBOT"
BOT_NAME = "credit-bot"
CHANNEL_ID = "C0FINANCE"
CHANNEL_NAME = "finance-credit"
# Where Slack's App Home events say they come from: the app's direct-message channel.
APP_HOME_CHANNEL_ID = "D0CREDITBOT"

REQUESTER = Person("U0CAMILLE", "camille", "requester")
APPROVER_1 = Person("U0ALEX", "alex", "approver 1")
APPROVER_2 = Person("U0SAM", "sam", "approver 2")
OUTSIDER = Person("U0JORDAN", "jordan", "someone else")
PEOPLE = (REQUESTER, APPROVER_1, APPROVER_2, OUTSIDER)
APPROVERS = (APPROVER_1, APPROVER_2)
# A user group holding both approvers, for a CREDIT_APPROVERS that names a group instead.
APPROVERS_GROUP_ID = "S0APPROVERS"
APPROVERS_GROUP_HANDLE = "credit-approvers"

CURRENCY = "EUR"
MAIN_BALANCE = Decimal("2869.200")
# What each is for is on the page, from its catalogue (`subaccount.<token>`).
SUBACCOUNTS = (
    SubAccount("paris-store", "paris@acme-shop.example", Decimal("61.800")),
    SubAccount("lyon-store", "lyon@acme-shop.example", Decimal("0.800")),
    SubAccount("newsletter", "newsletter@acme-shop.example", Decimal("245.125")),
    SubAccount("support-team", "support@acme-shop.example", Decimal("12.050")),
    SubAccount("black-friday", "promo@acme-shop.example", Decimal("1310.250")),
    SubAccount("night-batch", "batch@acme-shop.example", Decimal("40.000"), answers=False),
)

# The app's settings that make every feature show (bot.demo.server.demo_environ).
SECOND_APPROVAL_ABOVE = Decimal("500")  # above it, two approvers must confirm
DAILY_LIMIT = Decimal("800")  # most euros added to one sub-account in 24 hours
MAX_AMOUNT = Decimal("1000")
REMIND_AFTER_SECONDS = 60  # a pending card gets a reminder in its thread
# Short, so a transfer to night-batch turns `unknown` while the visitor watches.
SMSPARTNER_TIMEOUT_SECONDS = 3
