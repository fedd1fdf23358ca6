"""The baseline: a Bolt app whose `/credit` and Confirm handlers only call `ack()`.

It is served exactly as the real app is in HTTP mode (waitress, same thread count, same
`create_server` arguments, Bolt's `SlackRequestHandler` behind the same two routes), so
the ratio app / bare measures our code and not the HTTP server. Bolt's development
server would queue requests on one thread and make any ratio against it flatter us.

Run by `bench.run` as a subprocess:
    python -m bench.bare_app --port P --threads 16 [--process-before-response]
with SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET and SLACK_API_URL (a FakeSlack, for the
auth.test Bolt calls at start-up) in the environment.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterable
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient
from waitress.server import create_server

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"


def build_app(*, process_before_response: bool) -> App:
    """A Bolt app with nothing in its listeners but `ack()`."""
    client = WebClient(
        token=os.environ["SLACK_BOT_TOKEN"], base_url=os.environ["SLACK_API_URL"], timeout=10
    )
    app = App(
        client=client,
        signing_secret=os.environ["SLACK_SIGNING_SECRET"],
        process_before_response=process_before_response,
    )

    @app.command("/credit")
    def ack_command(ack: Any) -> None:
        ack()

    @app.action("credit_confirm")
    def ack_click(ack: Any) -> None:
        ack()

    return app


def make_wsgi(app: App) -> Any:
    """The same routing as bot/server.py's SlackHttpApp, minus the drain switch."""
    slack = SlackRequestHandler(app)

    def wsgi(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == EVENTS_PATH and environ.get("REQUEST_METHOD") == "POST":
            result: Iterable[bytes] = slack(environ, start_response)
            return result
        status = "200 OK" if path == HEALTH_PATH else "404 Not Found"
        data = json.dumps({"status": "ok" if path == HEALTH_PATH else "not found"}).encode()
        start_response(
            status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
        )
        return [data]

    return wsgi


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--process-before-response", action="store_true")
    args = parser.parse_args()
    app = build_app(process_before_response=args.process_before_response)
    # The arguments bot/server.py's HttpServer passes, so both servers behave alike.
    server = create_server(
        make_wsgi(app),
        host=args.host,
        port=args.port,
        threads=args.threads,
        max_request_body_size=1_048_576,
        ident="bare-bolt",
    )
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


if __name__ == "__main__":
    main()
