#!/usr/bin/env bash
# TCP discovery over a loopback /16 on one port, 1% of the addresses listening,
# wachter side by side with `nmap -sT -Pn -n` on the same targets in the same run.
#
#   bash bench/tcp-discovery.sh            # 127.0.0.0/16, 3 rounds
#   ROUNDS=5 NET=127.0.0.0/16 PORT=40443 bash bench/tcp-discovery.sh
#
# Reports probes per second, wall time, CPU and peak RSS of each tool, the ratio, and
# correctness against the lab's manifest: every listener found, zero false opens.
# Traffic stays on 127.0.0.0/8. Needs root only to install nmap when it is missing.
set -euo pipefail

NET=${NET:-127.0.0.0/16}
PORT=${PORT:-40443}          # inside the ephemeral range on purpose: self-connects must not count as open
DENSITY=${DENSITY:-0.01}
ROUNDS=${ROUNDS:-3}
CONCURRENCY=${CONCURRENCY:-256}

here=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$here/bench/out/tcp-discovery}
mkdir -p "$out"

command -v nmap >/dev/null || { apt-get update -qq && apt-get install -y -qq nmap >/dev/null; }
[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
(cd "$here" && cargo build --release -q -p wachter)
wachter=$here/target/release/wachter

"$wachter" lab --hosts "$NET" --port "$PORT" --mix http=1 --density "$DENSITY" --seed 7 \
    --manifest "$out/manifest.jsonl" --duration 900 2>"$out/lab.log" &
lab=$!
trap 'kill $lab 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do grep -q listening "$out/lab.log" 2>/dev/null && break; sleep 0.2; done
grep -q listening "$out/lab.log" || { echo "lab did not start"; cat "$out/lab.log"; exit 1; }

for round in $(seq 1 "$ROUNDS"); do
    rm -f "$out"/wachter.db*   # a fresh store each round: the scan records into it as usual
    /usr/bin/time -f '%e %P %M' -o "$out/wachter.$round.time" \
        "$wachter" scan "$NET" --scope "$NET" --ports "$PORT" --discover --rate 0 --per-network-rate 0 \
        -c "$CONCURRENCY" --connect-timeout 1000 --retries 0 --open-only --no-progress --json --db "$out/wachter.db" \
        -o "$out/wachter.$round.jsonl" >"$out/wachter.$round.summary.json"
    /usr/bin/time -f '%e %P %M' -o "$out/nmap.$round.time" \
        nmap -sT -Pn -n -p "$PORT" "$NET" -oG "$out/nmap.$round.gnmap" >/dev/null
done

python3 - "$out" "$ROUNDS" "$NET" "$PORT" <<'EOF'
import ipaddress, json, statistics, sys
out, rounds, net, port = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
total = ipaddress.ip_network(net).num_addresses
truth = set()
for line in open(f"{out}/manifest.jsonl"):
    h = json.loads(line)
    if h["expect"]["status"] == "open":
        truth.add(h["ip"])

def times(tool):
    rows = []
    for r in range(1, rounds + 1):
        wall, cpu, rss = open(f"{out}/{tool}.{r}.time").read().split()
        rows.append((float(wall), cpu, int(rss)))
    return rows

def found_wachter(r):
    return {json.loads(l)["ip"] for l in open(f"{out}/wachter.{r}.jsonl") if json.loads(l)["status"] == "open"}

def found_nmap(r):
    s = set()
    for line in open(f"{out}/nmap.{r}.gnmap"):
        if f"{port}/open/tcp" in line:
            s.add(line.split()[1])
    return s

print(f"TCP discovery: {net} port {port}, {total} targets, {len(truth)} listening, {rounds} rounds")
print(f"{'tool':<10} {'median wall s':>14} {'probes/s':>10} {'CPU':>6} {'peak RSS MB':>12} {'found':>7} {'false opens':>12}")
medians = {}
for tool, finder in (("wachter", found_wachter), ("nmap", found_nmap)):
    rows = times(tool)
    wall = statistics.median(r[0] for r in rows)
    rss = max(r[2] for r in rows) / 1024
    cpu = rows[len(rows) // 2][1]
    found = [finder(r) for r in range(1, rounds + 1)]
    missed = max(len(truth - f) for f in found)
    false = max(len(f - truth) for f in found)
    medians[tool] = wall
    print(f"{tool:<10} {wall:>14.2f} {total / wall:>10.0f} {cpu:>6} {rss:>12.1f} {len(truth) - missed:>7} {false:>12}")
self_connects = max(json.load(open(f"{out}/wachter.{r}.summary.json"))["self_connects"] for r in range(1, rounds + 1))
print(f"ratio (wachter probes/s ÷ nmap probes/s): {medians['nmap'] / medians['wachter']:.2f}x   self-connects ruled out: {self_connects}")
EOF
