"""An in-process SMS Partner: the calls the app makes, on play money (SPEC.md §1).

Served as a WSGI app under `/smspartner/v1` on the demo's own loopback server, and reached by
the app's real client through `SMSPARTNER_BASE_URL`:

- `POST /subaccount/credit/add` and `/remove`: a JSON body (`apiKey`, `credit`,
  `tokenSubaccount`) in, `{"success": true, "code": 200, "credit": …, "subaccountCredit": …,
  "currency": "EUR"}` or `{"success": false, "code": N, "message": "…"}` out, with the
  vendor's codes and French messages;
- `GET /me?apiKey=…`: the main account, `credits.balance` as a 3-decimal string;
- `GET /subaccount/list?apiKey=…&page=N`: 20 sub-accounts a page, each with its own `apiKey`.

A sub-account seeded with `answers=False` has its transfers carried out at once, but the answer
held for `late_answer_seconds` (longer than the app's timeout): what a connection lost mid-way
looks like to the app, so the outcome is `unknown` and the money did move.

Balances are Decimals kept to 3 decimals and written out as exact JSON numbers, never floats.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from bot.demo.seed import SubAccount
from bot.demo.wsgi import StartResponse, read_request, respond_raw_json

PREFIX = "/smspartner/v1"
PAGE_SIZE = 20
THREE_DECIMALS = Decimal("0.001")
CREATED_AT = "2024-01-15 09:30:00"

# The vendor's own words for each refusal (its page is in French).
MESSAGES = {
    1: "Clé API requise",
    2: "Crédit requis",
    3: "Identifiant du sous-compte requis",
    5: "Le crédit à attribuer doit être supérieur à 0",
    6: "Le solde doit être supérieur à 0",
    7: "Le sous-compte n'existe pas",
    8: "Crédit insuffisant",
    10: "Clé API incorrecte",
}


@dataclass(frozen=True)
class Move:
    """One transfer the stand-in carried out, for the page's balance panel."""

    number: int
    action: str  # "add" or "remove"
    token: str
    credit: Decimal


@dataclass
class _Account:
    id: int
    token: str
    email: str
    balance: Decimal
    api_key: str  # the sub-account's own key, as the list returns it
    answers: bool


class SMSPartnerStandIn:
    """The accounts, their balances, and the WSGI app that moves them."""

    def __init__(
        self,
        *,
        api_key: str,
        main_balance: Decimal,
        subaccounts: Sequence[SubAccount],
        currency: str = "EUR",
        late_answer_seconds: float = 0.0,
    ) -> None:
        self._api_key = api_key
        self.currency = currency
        self.late_answer_seconds = late_answer_seconds
        # Set on close, so an answer held back does not hold the server's shutdown.
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._main = main_balance
        self._accounts = {
            sub.token: _Account(
                id=1000 + number,
                token=sub.token,
                email=sub.email,
                balance=sub.balance,
                api_key=secrets.token_hex(16),
                answers=sub.answers,
            )
            for number, sub in enumerate(subaccounts, start=1)
        }
        self._moves: list[Move] = []
        self.version = 0  # bumped by every move, so the page redraws only on change

    def close(self) -> None:
        """Let every held answer go now."""
        self._closing.set()

    # -- what the page shows ---------------------------------------------------------------

    def balances(self) -> dict[str, Any]:
        """Balances as exact strings, and the moves so far; never an API key."""
        with self._lock:
            return {
                "currency": self.currency,
                "main": _three(self._main),
                "subaccounts": [
                    {"token": a.token, "email": a.email, "balance": _three(a.balance)}
                    for a in self._accounts.values()
                ],
                "moves": [
                    {
                        "number": m.number,
                        "action": m.action,
                        "token": m.token,
                        "credit": _three(m.credit),
                    }
                    for m in self._moves
                ],
                "version": self.version,
            }

    # -- the API ---------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        request = read_request(environ)
        path = request.path.removeprefix(PREFIX)
        if request.method == "POST" and path in (
            "/subaccount/credit/add",
            "/subaccount/credit/remove",
        ):
            fields = request.json(exact_numbers=True)
            body = self.transfer(path.rsplit("/", 1)[1], fields if isinstance(fields, dict) else {})
        elif request.method == "GET" and path == "/me":
            body = self.me(request.query)
        elif request.method == "GET" and path == "/subaccount/list":
            body = self.subaccount_list(request.query)
        else:
            return respond_raw_json(
                start_response, _failure(404, "Page introuvable"), "404 Not Found"
            )
        return respond_raw_json(start_response, body)

    def transfer(self, action: str, fields: dict[str, Any]) -> str:
        refusal = self._key_refusal(fields.get("apiKey"))
        if refusal:
            return refusal
        if fields.get("credit") in (None, ""):
            return _failure(2, MESSAGES[2])
        token = fields.get("tokenSubaccount")
        if not token:
            return _failure(3, MESSAGES[3])
        credit = _amount(fields["credit"])
        if credit is None or credit <= 0:
            return _failure(5, MESSAGES[5])
        with self._lock:
            account = self._accounts.get(token) if isinstance(token, str) else None
            if account is None:
                return _failure(7, MESSAGES[7])
            if action == "add":
                if self._main < credit:
                    return _failure(8, MESSAGES[8])
                self._main -= credit
                account.balance += credit
            else:
                if account.balance <= 0:
                    return _failure(6, MESSAGES[6])
                if account.balance < credit:
                    return _failure(8, MESSAGES[8])
                account.balance -= credit
                self._main += credit
            self._moves.append(Move(len(self._moves) + 1, action, account.token, credit))
            self.version += 1
            main, sub = _three(self._main), _three(account.balance)
            late = not account.answers
        if late:
            self._closing.wait(self.late_answer_seconds)
        return (
            f'{{"success": true, "code": 200, "credit": {main}, "subaccountCredit": {sub}, '
            f'"currency": {json.dumps(self.currency)}}}'
        )

    def me(self, query: dict[str, str]) -> str:
        refusal = self._key_refusal(query.get("apiKey"))
        if refusal:
            return refusal
        with self._lock:
            balance = _three(self._main)
        return json.dumps(
            {
                "success": True,
                "code": 200,
                "user": {"username": "acme-shop", "firstname": "Demo", "lastname": "Account"},
                "credits": {
                    "creditSms": int(Decimal(balance) / Decimal("0.045")),
                    "solde": balance,
                    "balance": balance,
                    "currency": self.currency,
                    "toSend": 0,
                },
            }
        )

    def subaccount_list(self, query: dict[str, str]) -> str:
        refusal = self._key_refusal(query.get("apiKey"))
        if refusal:
            return refusal
        page_text = query.get("page", "1")
        page = int(page_text) if page_text.isdigit() and int(page_text) > 0 else 1
        with self._lock:
            accounts = list(self._accounts.values())
            start = (page - 1) * PAGE_SIZE
            data = [
                {
                    "id": a.id,
                    "email": a.email,
                    "type": "subaccount",
                    "token": a.token,
                    "createdAt": CREATED_AT,
                    "credits": {"balance": _three(a.balance), "currency": self.currency},
                    "apiKey": a.api_key,
                }
                for a in accounts[start : start + PAGE_SIZE]
            ]
        return json.dumps(
            {
                "success": True,
                "code": 200,
                "total": len(accounts),
                "nb_per_page": PAGE_SIZE,
                "page": page,
                "data": data,
            }
        )

    def _key_refusal(self, api_key: object) -> str | None:
        if not api_key:
            return _failure(1, MESSAGES[1])
        if not (isinstance(api_key, str) and secrets.compare_digest(api_key, self._api_key)):
            return _failure(10, MESSAGES[10])
        return None


def _amount(value: Any) -> Decimal | None:
    """Credit as the vendor's samples send it: a string ("100") or a number (50)."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        return None
    try:
        amount = Decimal(value)
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def _three(value: Decimal) -> str:
    return format(value.quantize(THREE_DECIMALS), "f")


def _failure(code: int, message: str) -> str:
    return json.dumps({"success": False, "code": code, "message": message}, ensure_ascii=False)
