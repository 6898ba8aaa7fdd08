#!/usr/bin/env bash
# Ingest of N observations into the store through the path scans use (StoreSink: records
# prepared on the caller's thread, batches committed by the database thread: services,
# certificates, observations with the full record, findings, checkpoints), on SQLite and on
# PostgreSQL, each side by side with its own shell loading the same rows into the same
# schema in one transaction (a raw baseline: no JSON encoding, no lookups, no upserts,
# no findings): the sqlite3 shell, and psql's COPY.
#
#   bash bench/store-ingest.sh              # 1,000,000 observations
#   N=200000 bash bench/store-ingest.sh
#
# PostgreSQL runs from Debian's package in a private cluster on 127.0.0.1 with the server's
# default durability settings (fsync on; one commit per 1,000 records).
set -euo pipefail
N=${N:-1000000}
here=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$here/bench/out/store-ingest}
mkdir -p "$out"
command -v sqlite3 >/dev/null || { apt-get update -qq && apt-get install -y -qq sqlite3 >/dev/null; }
(cd "$here" && cargo build --release -q -p wachter-store --example ingest)
ingest=$here/target/release/examples/ingest

# --- SQLite -----------------------------------------------------------------------------
# Three rounds (shared machines vary by ±15% from one minute to the next); the median counts.
for round in 1 2 3; do
    /usr/bin/time -f '%e %M' -o "$out/sqlite-$round.time" "$ingest" "$N" "$out/wachter.db" >"$out/sqlite-$round.json"
done
python3 - "$out" <<'PY'
import json, shutil, sys
out = sys.argv[1]
rounds = sorted(range(1, 4), key=lambda r: json.load(open(f"{out}/sqlite-{r}.json"))["per_second"])
print("sqlite rounds (per second):", [json.load(open(f"{out}/sqlite-{r}.json"))["per_second"] for r in (1, 2, 3)])
median = rounds[1]
shutil.copy(f"{out}/sqlite-{median}.json", f"{out}/sqlite.json")
shutil.copy(f"{out}/sqlite-{median}.time", f"{out}/sqlite.time")
PY

# The peer: the same schema, the same number of rows, each with a record of the same size.
sqlite3 "$out/wachter.db" .schema >"$out/schema.sql"
python3 - "$N" "$out/wachter.db" "$out/rows.csv" >"$out/rows.sql" <<'PY'
import csv, sqlite3, sys
n, db, rows_csv = int(sys.argv[1]), sys.argv[2], sys.argv[3]
record = sqlite3.connect(db).execute("SELECT record FROM observations LIMIT 1").fetchone()[0]
quoted = record.replace("'", "''")
w = sys.stdout.write
w("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; BEGIN;\n")
w("INSERT INTO scans (id, started_at, seed, shard, ports, check_name, scope, params, state) VALUES (1, 'x', 0, '', '', '', '', '', 'x');\n")
with open(rows_csv, "w", newline="") as f:
    out = csv.writer(f)
    for i in range(n):
        ip = f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"
        w(f"INSERT INTO services (id, ip, port, hostname) VALUES ({i + 1}, '{ip}', 443, '');\n")
        w(f"INSERT INTO observations (scan_id, service_id, observed_at, status, protocol, record, position) VALUES (1, {i + 1}, 'x', 'open', 'https', '{quoted}', {i});\n")
        out.writerow([i + 1, ip, record, i])
w("COMMIT;\n")
PY
rm -f "$out/peer.db"*
sqlite3 "$out/peer.db" <"$out/schema.sql"
/usr/bin/time -f '%e %M' -o "$out/sqlite-peer.time" sqlite3 "$out/peer.db" <"$out/rows.sql" >/dev/null

# --- PostgreSQL ---------------------------------------------------------------------------
export CI_POSTGRES_DIR=${CI_POSTGRES_DIR:-/tmp/wachter-pg-bench} CI_POSTGRES_PORT=${CI_POSTGRES_PORT:-54330} CI_POSTGRES_SETTINGS=""
eval "$(bash "$here/.ci/postgres" start)"
server=$CI_POSTGRES_URL
psql() { command psql -X -q -v ON_ERROR_STOP=1 "$@"; }
for db in wachter_bench peer_bench; do
    psql "$server/postgres" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" 2>/dev/null
done
/usr/bin/time -f '%e %M' -o "$out/postgres.time" "$ingest" "$N" "$server/wachter_bench" >"$out/postgres.json"
# The peer: the schema wachter created, filled by COPY in one transaction.
command pg_dump --schema-only "$server/wachter_bench" | psql "$server/peer_bench" >/dev/null
cat >"$out/peer.psql" <<SQL
BEGIN;
INSERT INTO scans (id, started_at, seed, shard, ports, check_name, scope, params, state) VALUES (1, 'x', 0, '', '', '', '', '', 'x');
CREATE TEMP TABLE rows (id BIGINT, ip TEXT, record TEXT, position BIGINT);
\copy rows FROM '$out/rows.csv' WITH (FORMAT csv)
INSERT INTO services (id, ip, port, hostname) SELECT id, ip, 443, '' FROM rows;
INSERT INTO observations (scan_id, service_id, observed_at, status, protocol, record, position) SELECT 1, id, 'x', 'open', 'https', record, position FROM rows;
COMMIT;
SQL
/usr/bin/time -f '%e %M' -o "$out/postgres-peer.time" psql "$server/peer_bench" -f "$out/peer.psql" >/dev/null
bash "$here/.ci/postgres" stop

python3 - "$out" "$N" <<'PY'
import json, sys
out, n = sys.argv[1], int(sys.argv[2])
def wall(name):
    seconds, rss = open(f"{out}/{name}.time").read().split()
    return float(seconds), int(rss) / 1024
print(f"store ingest: {n} observations")
print(f"{'path':<40} {'seconds':>8} {'per second':>11} {'peak RSS MB':>12}")
for backend, peer_name in (("sqlite", "sqlite3 shell, bare INSERTs"), ("postgres", "psql COPY + INSERT…SELECT")):
    w = json.load(open(f"{out}/{backend}.json"))
    _, rss = wall(backend)
    peer_s, peer_rss = wall(f"{backend}-peer")
    print(f"{'wachter StoreSink on ' + backend:<40} {w['seconds']:>8.2f} {w['per_second']:>11.0f} {rss:>12.1f}")
    print(f"{peer_name:<40} {peer_s:>8.2f} {n / peer_s:>11.0f} {peer_rss:>12.1f}")
    print(f"  ratio (wachter ÷ peer): {w['per_second'] / (n / peer_s):.2f}x")
PY
