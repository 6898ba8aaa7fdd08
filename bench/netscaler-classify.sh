#!/usr/bin/env bash
# Full NetScaler classification of a lab /20 (4,096 addresses, a realistic mix), side by side
# with `nmap -sT -Pn -n -p PORT --script ssl-cert,http-title` on the same lab in the same run.
#
#   bash bench/netscaler-classify.sh
#   NET=127.30.0.0/20 KEY=rsa ROUNDS=3 bash bench/netscaler-classify.sh
#
# Reports hosts per second for each tool and the ratio, TLS handshakes per NetScaler host,
# peak RSS, and wachter's accuracy against the lab's manifest (`wachter verify`).
# Traffic stays on 127.0.0.0/8.
set -euo pipefail

NET=${NET:-127.30.0.0/20}
PORT=${PORT:-8443}
KEY=${KEY:-ecdsa}
ROUNDS=${ROUNDS:-1}
CONCURRENCY=${CONCURRENCY:-512}
# About half the addresses serve something; most are ordinary web servers, a tenth are
# NetScalers in every state, a few misbehave.
MIX=${MIX:-https=40,http=10,ns_vulnerable=4,ns_mitigated=3,ns_patched=5,ns_logonpoint=5,ns_broken_mitigation=1,ns_stamp_zero=2,ns_transfer_gzip=1,ns_legacy_tls=1,ns_plain_http=1,honeypot=1,catch_all=2,legacy_tls=2,bare_403=1,silent_close=1,tls_alert=1}
DENSITY=${DENSITY:-0.5}

here=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$here/bench/out/netscaler-classify}
mkdir -p "$out"

command -v nmap >/dev/null || { apt-get update -qq && apt-get install -y -qq nmap >/dev/null; }
[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
(cd "$here" && cargo build --release -q -p wachter)
wachter=$here/target/release/wachter

"$wachter" lab --hosts "$NET" --port "$PORT" --mix "$MIX" --density "$DENSITY" --seed 11 --key "$KEY" \
    --manifest "$out/manifest.jsonl" --duration 3600 2>"$out/lab.log" &
lab=$!
trap 'kill $lab 2>/dev/null || true' EXIT
for _ in $(seq 1 200); do grep -q listening "$out/lab.log" 2>/dev/null && break; sleep 0.2; done
grep -q listening "$out/lab.log" || { echo "lab did not start"; cat "$out/lab.log"; exit 1; }

for round in $(seq 1 "$ROUNDS"); do
    rm -f "$out"/wachter.db*   # a fresh store each round: the scan records into it as usual
    /usr/bin/time -f '%e %P %M' -o "$out/wachter.$round.time" \
        "$wachter" scan "$NET" --scope "$NET" --ports "$PORT" --check netscaler --rate 0 --per-network-rate 0 \
        -c "$CONCURRENCY" --connect-timeout 2000 --target-timeout 10000 --retries 0 --no-progress --json --db "$out/wachter.db" \
        -o "$out/wachter.$round.jsonl" >"$out/wachter.$round.summary.json"
    /usr/bin/time -f '%e %P %M' -o "$out/nmap.$round.time" \
        nmap -sT -Pn -n -p "$PORT" --script ssl-cert,http-title "$NET" -oX "$out/nmap.$round.xml" >/dev/null
done
"$wachter" verify --json --manifest "$out/manifest.jsonl" "$out/wachter.1.jsonl" >"$out/verify.json" || true

python3 - "$out" "$ROUNDS" "$NET" <<'EOF'
import ipaddress, json, statistics, sys
import xml.etree.ElementTree as ET
out, rounds, net = sys.argv[1], int(sys.argv[2]), sys.argv[3]
hosts = ipaddress.ip_network(net).num_addresses
manifest = [json.loads(l) for l in open(f"{out}/manifest.jsonl")]
listening = sum(1 for h in manifest if h["expect"]["status"] == "open")
netscalers = sum(1 for h in manifest if h["behaviour"].startswith("ns_"))

def times(tool):
    return [tuple(open(f"{out}/{tool}.{r}.time").read().split()) for r in range(1, rounds + 1)]

print(f"NetScaler classification: {net} ({hosts} addresses), {listening} listening, {netscalers} NetScalers, {rounds} round(s)")
print(f"{'tool':<10} {'median wall s':>14} {'hosts/s':>9} {'CPU':>6} {'peak RSS MB':>12}")
walls = {}
for tool in ("wachter", "nmap"):
    rows = times(tool)
    wall = statistics.median(float(r[0]) for r in rows)
    rss = max(int(r[2]) for r in rows) / 1024
    walls[tool] = wall
    print(f"{tool:<10} {wall:>14.2f} {hosts / wall:>9.0f} {rows[len(rows) // 2][1]:>6} {rss:>12.1f}")
print(f"ratio (wachter hosts/s ÷ nmap hosts/s): {walls['nmap'] / walls['wachter']:.2f}x")

records = [json.loads(l) for l in open(f"{out}/wachter.1.jsonl")]
ns = [r for r in records if any(c.get("product") == "netscaler" for c in r.get("checks", [])) and r.get("tls")]
hs = [r["tls"]["handshakes"] for r in ns]
print(f"TLS handshakes per NetScaler host (wachter): {sum(hs) / max(len(hs), 1):.2f} over {len(hs)} hosts (max {max(hs, default=0)})")
requests = [len(r.get("http", [])) for r in ns]
print(f"HTTP requests per NetScaler host: {sum(requests) / max(len(requests), 1):.1f}")
v = json.load(open(f"{out}/verify.json"))
print(f"accuracy against the manifest: {v['exact']}/{v['hosts']} hosts classified exactly, {len(v['mismatches'])} mismatches")
for m in v["mismatches"][:10]:
    print("  ", m)
titles = 0
for host in ET.parse(f"{out}/nmap.1.xml").getroot().iter("host"):
    if any(s.get("id") == "http-title" for s in host.iter("script")):
        titles += 1
print(f"nmap http-title answers: {titles}")
EOF
