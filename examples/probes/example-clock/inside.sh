#!/bin/sh
# Inside half of example-clock: runs inside the sandbox with key=value arguments (offset_s=N).
# Everything it prints is evidence for the report; the verdict is the outside oracle's
# (clock). Print `what you tried = ERRNO` (for example `kill(12) = EPERM`) for a refused
# step: it shows up in the `blocked` reason.
for arg in "$@"; do export "$arg"; done

date -s "@$(( $(date +%s) + offset_s ))" || echo "clock_settime(+$offset_s s) = EPERM"
