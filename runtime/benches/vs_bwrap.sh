#!/bin/sh
# The `breakout sandbox` command (strict, no cgroup-limits: the host has cgroup v1) against
# bubblewrap with all namespaces, paired in one hyperfine run; prints the median ratio.
# Usage: runtime/benches/vs_bwrap.sh [path/to/breakout]   (root; hyperfine, bubblewrap, jq-free)
set -eu
BREAKOUT=${1:-target/release/breakout}
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
hyperfine -N --warmup 20 --runs "${RUNS:-300}" --export-json "$OUT" \
  "$BREAKOUT sandbox --profile strict --disable cgroup-limits -- /bin/true" \
  "bwrap --unshare-all --die-with-parent --ro-bind / / --proc /proc --dev /dev /bin/true"
python3 - "$OUT" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
ours, bwrap = r[0]["median"], r[1]["median"]
print(f"median breakout {ours*1e3:.2f} ms, bwrap {bwrap*1e3:.2f} ms, ratio breakout/bwrap {ours/bwrap:.2f}")
PY
