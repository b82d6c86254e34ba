#!/bin/sh
# Inside half of example-cgroup-pids: runs inside the sandbox with key=value arguments (count=N hold_ms=MS).
# Everything it prints is evidence for the report; the verdict is the outside oracle's
# (cgroup-pids). Print `what you tried = ERRNO` (for example `kill(12) = EPERM`) for a refused
# step: it shows up in the `blocked` reason.
for arg in "$@"; do export "$arg"; done

# Start $count processes at once; the outside samples the cgroup's process count.
# Each is a forked shell blocked opening a fifo (a fork without an exec is quick even in a slow VM).
fifo=$(mktemp -u /tmp/pids-XXXXXX)
mkfifo "$fifo" || echo "mkfifo($fifo) = EACCES"
i=0
while [ "$i" -lt "$count" ]; do
    ( read -r _ < "$fifo" ) 2>/dev/null &
    i=$((i + 1))
done
sleep "$((hold_ms / 1000 + 1))"
: > "$fifo"   # opening it for writing releases them all
wait
rm -f "$fifo"
