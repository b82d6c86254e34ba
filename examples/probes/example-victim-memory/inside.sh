#!/bin/sh
# Inside half of example-victim-memory: runs inside the sandbox with key=value arguments (pid=PID addr=0xADDR len=N).
# Everything it prints is evidence for the report; the verdict is the outside oracle's
# (victim-memory). Print `what you tried = ERRNO` (for example `kill(12) = EPERM`) for a refused
# step: it shows up in the `blocked` reason.
for arg in "$@"; do export "$arg"; done

# The secret sits at $addr in the victim's heap: read it through /proc/PID/mem.
dd if="/proc/$pid/mem" bs=1 skip="$((addr))" count="$len" 2>/dev/null || echo "read(/proc/$pid/mem) = EACCES"
echo
