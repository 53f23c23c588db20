"""The release phase: runs once per release before its processes start (like a migration).

Config vars for trying the platform: FAIL_RELEASE=1 makes it fail (the old release keeps
running); RELEASE_SLEEP=SECONDS makes it slow (to see release timeouts).
"""

import os
import sys
import time
from pathlib import Path

pause = os.environ.get("RELEASE_SLEEP", "")
if pause:
    try:
        seconds = float(pause)
    except ValueError:
        print(f"release phase: RELEASE_SLEEP={pause!r} is not a number, not sleeping", flush=True)
    else:
        print(f"release phase: sleeping {seconds:g}s as RELEASE_SLEEP asks", flush=True)
        time.sleep(seconds)

print("release phase: migrating", flush=True)
if os.environ.get("FAIL_RELEASE", "") not in ("", "0"):
    print("release phase: failing as FAIL_RELEASE asks", flush=True)
    sys.exit(1)

marker = Path(os.environ.get("RELEASE_MARKER") or "release-marker")
marker.write_text(time.strftime("%Y-%m-%dT%H:%M:%S%z") + "\n")
print(f"release phase: migrating done, wrote {marker}", flush=True)
