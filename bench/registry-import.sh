#!/usr/bin/env bash
# RIPE registry import: a generated inetnum split file the size of the real one (OBJECTS
# inetnums, default 4,000,000, with role and organisation files), imported by `wachter
# registry import` into a fresh SQLite store (parse, resolve abuse-c, CIDR cover, store),
# side by side with two floors measured in the same run: `zcat` reading the files (I/O and
# decompression only) and the parser alone (parse + resolve, networks counted, not stored).
#
#   bash bench/registry-import.sh
#   OBJECTS=1000000 bash bench/registry-import.sh
set -euo pipefail
OBJECTS=${OBJECTS:-4000000}
here=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$here/bench/out/registry-import}
mkdir -p "$out"
(cd "$here" && cargo build --release -q -p wachter-constituency --example gen_inetnum && cargo build --release -q -p wachter)
gen=$here/target/release/examples/gen_inetnum
wachter=$here/target/release/wachter
files=("$out/ripe.db.inetnum.gz" "$out/ripe.db.role.gz" "$out/ripe.db.organisation.gz")
[ -f "$out/objects-$OBJECTS" ] || { "$gen" "$out/ripe.db.inetnum.gz" --objects "$OBJECTS" >/dev/null; touch "$out/objects-$OBJECTS"; }

/usr/bin/time -f '%e %M' -o "$out/zcat.time" sh -c "zcat ${files[*]} | wc -c >/dev/null"
/usr/bin/time -f '%e %M' -o "$out/parse.time" "$gen" "$out/ripe.db.inetnum.gz" --parse-only --stream >"$out/parse.json"
rm -f "$out/store.db"*
/usr/bin/time -f '%e %M' -o "$out/import.time" "$wachter" registry import "${files[@]}" --db "$out/store.db" --json >"$out/import.json"

python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
def t(name):
    s, rss = open(f"{out}/{name}.time").read().split()
    return float(s), int(rss) / 1024
imp = json.load(open(f"{out}/import.json"))
print(f"registry import: {imp['objects']} objects, {imp['networks']} networks (CIDRs) stored, "
      f"{imp['problems_total']} problems")
print(f"{'step':<44} {'seconds':>8} {'peak RSS MB':>12}")
for name, label in (("zcat", "zcat | wc (floor: read + gunzip)"),
                    ("parse", "parser alone (parse + resolve, streamed)"),
                    ("import", "wachter registry import (into SQLite)")):
    s, rss = t(name)
    print(f"{label:<44} {s:>8.2f} {rss:>12.1f}")
print(f"  import ÷ parser alone: {t('import')[0] / t('parse')[0]:.2f}x the time")
PY
