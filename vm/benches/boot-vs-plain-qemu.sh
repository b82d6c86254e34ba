#!/bin/sh
# Benchmark: `breakout vm-run -- /bin/true` end to end under TCG, against plain QEMU
# (`-M microvm -accel tcg`) booting the same kernel with a busybox initramfs whose init
# powers off at once. Both are run by hyperfine in the same session, interleaved per round
# by hyperfine's order; the figure is the ratio of the medians (goal: <= 1.2).
#
# usage: vm/benches/boot-vs-plain-qemu.sh [RUNS]   (env BREAKOUT=path/to/breakout)
# needs: hyperfine, qemu-system-x86, busybox-static, cpio, python3
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RUNS=${1:-10}
BREAKOUT=${BREAKOUT:-}
if [ -z "$BREAKOUT" ]; then
    for p in "$ROOT/target/release/breakout" "$ROOT/target/debug/breakout"; do
        if [ -x "$p" ]; then BREAKOUT=$p; break; fi
    done
fi
[ -x "${BREAKOUT:-}" ] || { echo "build breakout first (cargo build -p breakout-harness -p breakout-vm)" >&2; exit 2; }
CACHE=${BREAKOUT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/breakout}

# One run provisions the kernel and builds the image, so neither is measured.
"$BREAKOUT" vm-run --accel tcg -- /bin/true
KERNEL="$CACHE/kernel/$(cat "$CACHE/kernel/default")/vmlinuz"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/root/bin" "$WORK/root/dev" "$WORK/root/proc"
cp /bin/busybox "$WORK/root/bin/busybox"
printf '#!/bin/busybox sh\n/bin/busybox poweroff -f\n' > "$WORK/root/init"
chmod 755 "$WORK/root/init"
(cd "$WORK/root" && find . | cpio -o -H newc --quiet > "$WORK/plain.cpio")

# The same kernel options as breakout uses under TCG (see vm/src/qemu.rs): without the two
# tsc options the kernel may hang calibrating on a busy host, and keeps time by jiffies.
TSC=$(awk -F: '/^cpu MHz/ { printf "%d", $2 * 1000; exit }' /proc/cpuinfo)
APPEND="console=ttyS0 quiet panic=-1 rdinit=/init tsc=reliable tsc_early_khz=$TSC"
PLAIN="qemu-system-x86_64 -M microvm -accel tcg,thread=multi -m 1024 -smp 2 -nodefaults -no-user-config -display none -serial stdio -no-reboot -kernel $KERNEL -initrd $WORK/plain.cpio -append '$APPEND'"

hyperfine --style basic --warmup 1 --runs "$RUNS" --export-json "$WORK/result.json" \
    -n vm-run "$BREAKOUT vm-run --accel tcg -- /bin/true" \
    -n plain-qemu "$PLAIN"

python3 - "$WORK/result.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
ours, peer = r["vm-run"]["median"], r["plain-qemu"]["median"]
print(f"median vm-run {ours:.3f} s, plain qemu {peer:.3f} s, ratio {ours / peer:.2f} (goal <= 1.2)")
PY
