#!/bin/sh
# Inside half of my-seccomp-probe: runs inside the sandbox with key=value arguments (path=FILE).
# Everything it prints is evidence for the report; the verdict is the outside oracle's
# (secret-file). Print `what you tried = ERRNO` (for example `kill(12) = EPERM`) for a refused
# step: it shows up in the `blocked` reason.
for arg in "$@"; do export "$arg"; done

cat "$path" || echo "open($path) = EACCES"
