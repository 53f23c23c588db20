"""A tiny worker process: prints a line every second."""

import os
import time

NAME = os.environ.get("DYNO", "worker")
n = 0
while True:
    n += 1
    print(f"{NAME} tick {n}", flush=True)
    time.sleep(1)
