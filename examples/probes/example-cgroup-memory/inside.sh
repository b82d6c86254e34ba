#!/bin/sh
# Inside half of example-cgroup-memory: runs inside the sandbox with key=value arguments (bytes=N hold_ms=MS).
# Everything it prints is evidence for the report; the verdict is the outside oracle's
# (cgroup-memory). Print `what you tried = ERRNO` (for example `kill(12) = EPERM`) for a refused
# step: it shows up in the `blocked` reason.
for arg in "$@"; do export "$arg"; done

# dd's buffer is $bytes long and is filled in one read: that is the memory held.
dd if=/dev/zero of=/dev/null bs="$bytes" count=1 || echo "malloc($bytes) = ENOMEM"
sleep "$((hold_ms / 1000))"
