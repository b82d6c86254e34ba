#!/bin/sh
# Inside half of example-file-outside: runs inside the sandbox with key=value arguments (path=FILE content=TEXT).
# Everything it prints is evidence for the report; the verdict is the outside oracle's
# (file-outside). Print `what you tried = ERRNO` (for example `kill(12) = EPERM`) for a refused
# step: it shows up in the `blocked` reason.
for arg in "$@"; do export "$arg"; done

printf '%s\n' "$content" > "$path" || echo "open($path, O_CREAT) = EACCES"
