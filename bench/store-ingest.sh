#!/usr/bin/env bash
# Ingest of N observations into the SQLite store through the path scans use (StoreSink:
# services, certificates, observations with the full record, findings, checkpoints), side by
# side with the sqlite3 shell loading the same rows into the same schema in one transaction
# (a raw-SQLite baseline: no JSON encoding, no lookups, no upserts).
#
#   bash bench/store-ingest.sh              # 1,000,000 observations
#   N=200000 bash bench/store-ingest.sh
set -euo pipefail
N=${N:-1000000}
here=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$here/bench/out/store-ingest}
mkdir -p "$out"
command -v sqlite3 >/dev/null || { apt-get update -qq && apt-get install -y -qq sqlite3 >/dev/null; }
(cd "$here" && cargo build --release -q -p wachter-store --example ingest)

/usr/bin/time -f '%e %M' -o "$out/wachter.time" "$here/target/release/examples/ingest" "$N" "$out/wachter.db" >"$out/wachter.json"

# The peer: the same schema, the same number of rows, each with a record of the same size.
sqlite3 "$out/wachter.db" .schema >"$out/schema.sql"
python3 - "$N" "$out/wachter.db" >"$out/rows.sql" <<'PY'
import sqlite3, sys
n, db = int(sys.argv[1]), sys.argv[2]
record = sqlite3.connect(db).execute("SELECT record FROM observations LIMIT 1").fetchone()[0].replace("'", "''")
w = sys.stdout.write
w("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; BEGIN;\n")
w("INSERT INTO scans (id, started_at, seed, shard, ports, check_name, scope, params, state) VALUES (1, 'x', 0, '', '', '', '', '', 'x');\n")
for i in range(n):
    w(f"INSERT INTO services (id, ip, port, hostname) VALUES ({i + 1}, '10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}', 443, '');\n")
    w(f"INSERT INTO observations (scan_id, service_id, observed_at, status, protocol, record, position) VALUES (1, {i + 1}, 'x', 'open', 'https', '{record}', {i});\n")
w("COMMIT;\n")
PY
rm -f "$out/peer.db"*
sqlite3 "$out/peer.db" <"$out/schema.sql"
/usr/bin/time -f '%e %M' -o "$out/peer.time" sqlite3 "$out/peer.db" <"$out/rows.sql" >/dev/null

python3 - "$out" "$N" <<'PY'
import json, sys
out, n = sys.argv[1], int(sys.argv[2])
w = json.load(open(f"{out}/wachter.json"))
peer_wall, peer_rss = open(f"{out}/peer.time").read().split()
wall, rss = open(f"{out}/wachter.time").read().split()
print(f"store ingest: {n} observations")
print(f"{'path':<34} {'seconds':>8} {'per second':>11} {'peak RSS MB':>12}")
print(f"{'wachter StoreSink (full record)':<34} {w['seconds']:>8.2f} {w['per_second']:>11.0f} {int(rss) / 1024:>12.1f}")
print(f"{'sqlite3 shell, bare INSERTs':<34} {float(peer_wall):>8.2f} {n / float(peer_wall):>11.0f} {int(peer_rss) / 1024:>12.1f}")
print(f"ratio (wachter ÷ sqlite3 shell): {w['per_second'] / (n / float(peer_wall)):.2f}x")
PY
