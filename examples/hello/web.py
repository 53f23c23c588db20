"""A tiny web process: answers every GET with which process it is, on $PORT."""

import http.server
import os
import sys

NAME = os.environ.get("DYNO", "web")


class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        body = f"hello from {NAME}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt: str, *args: object) -> None:
        print(f"{self.command} {self.path} {args[1] if len(args) > 1 else ''}", flush=True)


if __name__ == "__main__":
    port = int(os.environ["PORT"])
    print(f"{NAME} listening on port {port}", flush=True)
    sys.stdout.flush()
    http.server.ThreadingHTTPServer(("127.0.0.1", port), Hello).serve_forever()
