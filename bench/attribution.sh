#!/usr/bin/env bash
# Attribution: a longest-prefix-match table built from PREFIXES generated networks (IPv4
# and IPv6, weighted like a registry dump), then LOOKUPS addresses looked up in it. wachter's
# PrefixMap, built both ways an import can build it (`insert`, one network at a time in the
# order given; `collect`, sorted chunks then compacted), side by side with a baseline of our
# own on the same data in the same run: the textbook table, one hash map per prefix length
# probed from the longest length present (std HashMap, cheap integer hasher). The issue's
# budget: 4,000,000 networks and 1,000,000 lookups in at most 10 seconds in total.
#
#   bash bench/attribution.sh                       # 4,000,000 networks, 1,000,000 lookups
#   PREFIXES=1000000 LOOKUPS=200000 bash bench/attribution.sh
#
# Each approach runs in a process of its own, so that its peak RSS (VmHWM) is its own; the
# data is generated from SEED while building and looking up (no input list in memory) and
# every approach must give the same answers (matched count and checksum). Three rounds
# (shared machines vary from one minute to the next); the median by total time counts.
set -euo pipefail
PREFIXES=${PREFIXES:-4000000}
LOOKUPS=${LOOKUPS:-1000000}
SEED=${SEED:-1}
here=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$here/bench/out/attribution}
mkdir -p "$out"
(cd "$here" && cargo build --release -q -p wachter-constituency --example attribution_bench)
bench=$here/target/release/examples/attribution_bench

for round in 1 2 3; do
    for approach in insert collect baseline; do
        "$bench" --approach "$approach" --prefixes "$PREFIXES" --lookups "$LOOKUPS" --seed "$SEED" \
            >"$out/$approach-$round.json"
    done
done

python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
approaches = {
    "insert": "PrefixMap, insert one by one",
    "collect": "PrefixMap, collect (sorted chunks)",
    "baseline": "baseline: HashMap per length",
}
median = {}
for approach in approaches:
    rounds = [json.load(open(f"{out}/{approach}-{r}.json")) for r in (1, 2, 3)]
    print(f"{approach} rounds (total s):", [round(r["total_seconds"], 2) for r in rounds])
    median[approach] = sorted(rounds, key=lambda r: r["total_seconds"])[1]
    json.dump(median[approach], open(f"{out}/{approach}.json", "w"))
answers = {(r["matched"], r["checksum"]) for r in median.values()}
if len(answers) != 1:
    sys.exit(f"approaches disagree: {answers}")
first = median["baseline"]
print(f"\nattribution: {first['prefixes']} networks generated ({first['networks']} distinct), "
      f"{first['lookups']} lookups, {first['matched']} matched")
print(f"{'approach':<36} {'build s':>8} {'lookup s':>9} {'total s':>8} {'peak RSS MB':>12}")
for approach, name in approaches.items():
    r = median[approach]
    print(f"{name:<36} {r['build_seconds']:>8.2f} {r['lookup_seconds']:>9.2f} "
          f"{r['total_seconds']:>8.2f} {r['peak_rss_mb']:>12.1f}")
base = median["baseline"]
for approach in ("insert", "collect"):
    r = median[approach]
    print(f"  ratio {approach} (throughput, PrefixMap ÷ baseline; >1 is faster): "
          f"total {base['total_seconds'] / r['total_seconds']:.2f}x, "
          f"build {base['build_seconds'] / r['build_seconds']:.2f}x, "
          f"lookup {base['lookup_seconds'] / r['lookup_seconds']:.2f}x; "
          f"memory {r['peak_rss_mb'] / base['peak_rss_mb']:.2f}x the baseline's")
budget = 10.0
for approach in ("insert", "collect"):
    total = median[approach]["total_seconds"]
    verdict = "within" if total <= budget else "OVER"
    print(f"  budget ({budget:.0f} s for build + lookups): {approach} {total:.2f} s, {verdict}")
PY
