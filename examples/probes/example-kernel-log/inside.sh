#!/bin/sh
# Inside half of example-kernel-log: runs inside the sandbox with key=value arguments (kmsg=/dev/kmsg tag=TAG).
# Everything it prints is evidence for the report; the verdict is the outside oracle's
# (kernel-log). Print `what you tried = ERRNO` (for example `kill(12) = EPERM`) for a refused
# step: it shows up in the `blocked` reason.
for arg in "$@"; do export "$arg"; done

dmesg | grep -F "$tag:" || echo "syslog(READ_ALL) = EPERM"
