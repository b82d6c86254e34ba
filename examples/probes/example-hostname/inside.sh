#!/bin/sh
# Inside half of example-hostname: runs inside the sandbox with key=value arguments (name=NAME).
# Everything it prints is evidence for the report; the verdict is the outside oracle's
# (hostname). Print `what you tried = ERRNO` (for example `kill(12) = EPERM`) for a refused
# step: it shows up in the `blocked` reason.
for arg in "$@"; do export "$arg"; done

hostname "$name" || echo "sethostname($name) = EPERM"
