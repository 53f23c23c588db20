"""The web process: a small Bottle app on a threading wsgiref server, bound to $PORT."""

import json
import os
import signal
import threading
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from bottle import Bottle, response

HERE = Path(__file__).resolve().parent
app = Bottle()


@app.get("/")
def index() -> str:
    marker = Path(os.environ.get("RELEASE_MARKER") or "release-marker")
    response.content_type = "application/json"
    return json.dumps(
        {
            "app": "python-web",
            "dyno": os.environ.get("DYNO"),
            "message": (HERE / "message.txt").read_text().strip(),
            "release_ran": marker.exists(),
        }
    )


class Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a slow client does not hold up the exit


class OneLine(WSGIRequestHandler):
    def log_message(self, fmt: str, *args: object) -> None:
        print(f"{self.command} {self.path} {args[1] if len(args) > 1 else ''}", flush=True)


def main() -> None:
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ["PORT"])
    server = make_server(host, port, app, server_class=Server, handler_class=OneLine)
    # serve_forever runs on this thread, so shutdown() must be called from another one.
    signal.signal(
        signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start()
    )
    print(f"{os.environ.get('DYNO', 'web')} listening on {host}:{port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    print("web: stopped on SIGTERM", flush=True)


if __name__ == "__main__":
    main()
