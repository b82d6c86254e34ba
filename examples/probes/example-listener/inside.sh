#!/bin/sh
# Inside half of example-listener: runs inside the sandbox with key=value arguments (port=PORT).
# Everything it prints is evidence for the report; the verdict is the outside oracle's
# (listener). Print `what you tried = ERRNO` (for example `kill(12) = EPERM`) for a refused
# step: it shows up in the `blocked` reason.
for arg in "$@"; do export "$arg"; done

nc -w 2 127.0.0.1 "$port" </dev/null || echo "connect(127.0.0.1:$port) = ECONNREFUSED"
