"""The test fakes, with what a benchmark needs on top: when each transfer and each card
arrived, kept-alive connections as Slack's and SMS Partner's servers keep them, and a
throwaway certificate for Slack over HTTPS."""

from __future__ import annotations

import re
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trustme

from tests.fakes.slack import FakeSlack
from tests.fakes.smspartner import FakeSMSPartner, RecordedRequest, _Reply

TOKEN_IN_CARD = re.compile(r"sub-account `([A-Za-z0-9._-]+)`")


class TimedSMSPartner(FakeSMSPartner):
    """A FakeSMSPartner that notes, per sub-account token, when a transfer reached it.

    The bench sends each Confirm click for its own sub-account, so the token ties a
    received transfer back to the click that caused it. Times are `time.perf_counter()`
    of this process, the clock the load generator stamps its sends with."""

    def __init__(self, **kwargs: object) -> None:
        self.received_at: dict[str, float] = {}
        # As SMS Partner's servers: HTTP/1.1, connections kept alive between calls.
        super().__init__(keep_alive=True, **kwargs)  # type: ignore[arg-type]

    def _receive(self, request: RecordedRequest) -> _Reply:
        arrived = time.perf_counter()
        fields = request.json if isinstance(request.json, dict) else {}
        token = fields.get("tokenSubaccount")
        if isinstance(token, str):
            with self._changed:
                self.received_at.setdefault(token, arrived)
        return super()._receive(request)

    def received_count(self) -> int:
        with self._changed:
            return len(self.received_at)


class TimedSlack(FakeSlack):
    """A FakeSlack as Slack's servers behave for connections (HTTP/1.1, kept alive between
    calls), optionally over HTTPS, that notes when each card was posted, by sub-account.

    Card times are `time.perf_counter()` of this process, like TimedSMSPartner's."""

    def __init__(self, **kwargs: Any) -> None:
        self.card_at: dict[str, float] = {}
        super().__init__(**kwargs)

    def start(self) -> TimedSlack:
        super().start()
        # FakeSlack's handler speaks HTTP/1.0 (a connection per call); set before any request.
        # It writes headers and body apart: on a kept-alive connection, Nagle's algorithm
        # would hold the body until the client's delayed ACK (40 ms) without TCP_NODELAY.
        assert self._server is not None
        handler = self._server.RequestHandlerClass
        handler.protocol_version = "HTTP/1.1"  # type: ignore[attr-defined]
        handler.disable_nagle_algorithm = True  # type: ignore[attr-defined]
        return self

    def _handle_api(
        self, method: str, args: dict[str, Any], headers: dict[str, str]
    ) -> dict[str, Any]:
        arrived = time.perf_counter()
        if method == "chat.postMessage":
            found = TOKEN_IN_CARD.search(str(args.get("text", "")))
            if found:
                with self._changed:
                    self.card_at.setdefault(found.group(1), arrived)
        return super()._handle_api(method, args, headers)


@dataclass(frozen=True)
class ThrowawayTLS:
    """A CA made for this run, and a certificate for 127.0.0.1 signed by it."""

    server_context: ssl.SSLContext
    ca_file: Path  # what the app process trusts, through SSL_CERT_FILE


def throwaway_tls(directory: Path) -> ThrowawayTLS:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = directory / "bench-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return ThrowawayTLS(server_context=context, ca_file=ca_file)
