#!/usr/bin/env bash
# The VM tests, for CI (called by .ci/run / scripts/test). A fresh Debian 12 machine needs:
#   apt-get install qemu-system-x86 busybox-static cpio binutils hyperfine
# and apt access for `apt-get download` (the guest kernel is fetched into the cache once;
# BREAKOUT_CACHE moves the cache, default ~/.cache/breakout). No KVM needed: TCG is used
# when a real KVM boot fails.
set -euo pipefail
cd "$(dirname "$0")/.."

# breakout-init (the guest's PID 1) must sit next to breakout: build both.
cargo build -p breakout-vm -p breakout-harness

# Unit tests, then real boots: exit codes, ordered output, cgroup v2, results channel,
# kernel panic, --timeout, guest OOM (vm/tests/vm_run.rs).
cargo test -p breakout-vm

# The CLI end to end: exit code 7 and stdout come back through `breakout vm-run`.
set +e
out=$(target/debug/breakout vm-run -- /bin/sh -c 'echo from-the-guest; exit 7')
code=$?
set -e
if [ "$code" != 7 ] || [ "$out" != from-the-guest ]; then
    echo "vm-run smoke test: exit $code, stdout '$out' (want 7, from-the-guest)" >&2
    exit 1
fi

# The runtime's root and cgroup v2 tests inside the VM, with vm-run as the cargo runner
# (the host has cgroup v1; the guest has cgroup v2 with memory, pids and cpu).
export CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER="$PWD/target/debug/breakout vm-run --timeout 900 --"
cargo test -p breakout-runtime --test cgroup_limits
cargo test -p breakout-runtime --test layers
