"""The worker process: a heartbeat line every 5 seconds until SIGTERM."""

import os
import signal
import threading

stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())

name = os.environ.get("DYNO", "worker")
beats = 0
while not stop.is_set():
    beats += 1
    print(f"{name} heartbeat {beats}", flush=True)
    stop.wait(5)
print(f"{name} stopped on SIGTERM", flush=True)
