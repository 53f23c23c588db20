"""A web process for the router's tests: it says who it is and what headers it got (GET /),
answers after a while (GET /sleep/SECONDS), with a status (GET /status/CODE), or closes the
connection without answering (GET /close). On SIGTERM it stops taking connections and
finishes the requests under way, as a web process should."""

import json
import os
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STOPPING = threading.Event()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the router's connections are
    timeout = 10  # an idle connection is closed after it
    disable_nagle_algorithm = True  # headers and body go in two writes: no delayed-ACK wait

    def do_GET(self) -> None:  # noqa: N802
        parts = self.path.split("?")[0].strip("/").split("/")
        if parts[0] == "close":
            self.close_connection = True
            return
        if parts[0] == "sleep":
            time.sleep(float(parts[1]))
        status = int(parts[1]) if parts[0] == "status" else 200
        body = json.dumps(
            {"dyno": os.environ.get("DYNO"), "path": self.path, "headers": dict(self.headers)}
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if STOPPING.is_set():  # stopping: each connection ends after its request
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt: str, *args: object) -> None:
        pass


class Server(ThreadingHTTPServer):
    request_queue_size = 128  # connections waiting to be accepted (the default is 5)


def main() -> None:
    server = Server(("127.0.0.1", int(os.environ["PORT"])), Handler)
    server.daemon_threads = False  # server_close waits for the requests under way

    def stop(*_: object) -> None:
        STOPPING.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
