#!/bin/sh
# Inside half of example-victim-killed: runs inside the sandbox with key=value arguments (pid=PID).
# Everything it prints is evidence for the report; the verdict is the outside oracle's
# (victim-killed). Print `what you tried = ERRNO` (for example `kill(12) = EPERM`) for a refused
# step: it shows up in the `blocked` reason.
for arg in "$@"; do export "$arg"; done

kill -9 "$pid" || echo "kill($pid, SIGKILL) = EPERM"
