#!/bin/sh
# Inside half of example-sysctl: runs inside the sandbox with key=value arguments (path=/proc/sys/KEY value=VALUE).
# Everything it prints is evidence for the report; the verdict is the outside oracle's
# (sysctl). Print `what you tried = ERRNO` (for example `kill(12) = EPERM`) for a refused
# step: it shows up in the `blocked` reason.
for arg in "$@"; do export "$arg"; done

printf '%s\n' "$value" > "$path" || echo "write($path) = EROFS"
