#!/usr/bin/env bash
# The dashboard under a national-scale case: SERVICES NetScalers scanned SCANS times
# (default 100,000 x 10 = 1,000,000 observations, 100,000 findings, 98 organisations), in a
# SQLite store built through the path scans use. `wachter serve` answers the overview and
# filtered host lists (HTML pages and the JSON API); each is requested ROUNDS times after
# one warm-up, and the server's own time (the `Server-Timing` header) and the client's time
# are reported as median and p95.
#
# The peer, in the same run on the same file: Datasette (the SQLite web explorer) serving the
# findings table with the same filters and the same counts query. Ratios are
# wachter / Datasette client time (below 1: wachter is faster).
#
#   bash bench/dashboard.sh
#   SERVICES=20000 SCANS=5 bash bench/dashboard.sh
set -euo pipefail
SERVICES=${SERVICES:-100000}
SCANS=${SCANS:-10}
ROUNDS=${ROUNDS:-20}
here=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$here/bench/out/dashboard}
mkdir -p "$out"
port=${PORT:-18461}
peer_port=$((port + 1))

(cd "$here" && cargo build --release -q -p wachter && cargo build --release -q -p wachter-store --example dashboard_store)
wachter=$here/target/release/wachter
db=$out/wachter.db
/usr/bin/time -f '%e s, %M KB' -o "$out/build.time" \
    "$here/target/release/examples/dashboard_store" "$db" "$SERVICES" "$SCANS" | tee "$out/store.json"
echo "store built in $(cat "$out/build.time"); $(du -h "$db" | cut -f1) on disk"

# A viewer and a read token; a session for the HTML pages comes from the login form.
printf 'bench-password-long-enough\n' | "$wachter" user add bench --role viewer --password-stdin --db "$db" >/dev/null
token=$("$wachter" token add --user bench --name bench --scope read --json --db "$db" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')

"$wachter" serve --listen "127.0.0.1:$port" --db "$db" >"$out/serve.log" 2>&1 &
serve_pid=$!

# The peer in a private virtual environment (bench only; CI does not need it).
venv=${BENCH_VENV:-/tmp/wachter-bench-datasette}
[ -x "$venv/bin/datasette" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q 'datasette==0.65.1'; }
"$venv/bin/datasette" serve "$db" --port "$peer_port" --host 127.0.0.1 \
    --setting sql_time_limit_ms 60000 --setting facet_time_limit_ms 60000 >"$out/datasette.log" 2>&1 &
peer_pid=$!
trap 'kill $serve_pid $peer_pid 2>/dev/null || true' EXIT

python3 - "$port" "$peer_port" "$token" "$ROUNDS" "$out" <<'PY'
import http.client, json, re, statistics, sys, time, urllib.parse

port, peer_port, token, rounds, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]

def wait(p, path):
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", p, timeout=5)
            c.request("GET", path)
            c.getresponse().read()
            return
        except OSError:
            time.sleep(0.3)
    sys.exit(f"nothing answers on 127.0.0.1:{p}")

wait(port, "/login")
wait(peer_port, "/-/versions.json")

def login():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", "/login")
    r = c.getresponse()
    page = r.read().decode()
    cookies = [h.split(";")[0] for k, h in r.getheaders() if k.lower() == "set-cookie"]
    csrf = re.search(r'name="_csrf"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="_csrf"', page)
    csrf = csrf.group(1) or csrf.group(2)
    body = urllib.parse.urlencode({"username": "bench", "password": "bench-password-long-enough", "_csrf": csrf})
    c.request("POST", "/login", body, {"Content-Type": "application/x-www-form-urlencoded", "Cookie": "; ".join(cookies)})
    r = c.getresponse()
    r.read()
    session = [h.split(";")[0] for k, h in r.getheaders() if k.lower() == "set-cookie" and h.startswith("wachter_session=")]
    if r.status != 303 or not session:
        sys.exit(f"login failed: {r.status}")
    return session[0]

session = login()
org = 7  # an organisation id in the middle of the list

ours = {
    "overview page (HTML)": ("/", {"Cookie": session}),
    "overview (API)": ("/api/v1/overview", {"Authorization": f"Bearer {token}"}),
    "hosts: CVE + vulnerable, 100 (HTML)": ("/hosts?cve=CVE-2019-19781&state=vulnerable", {"Cookie": session}),
    "hosts: CVE + vulnerable, 100 (API)": ("/api/v1/hosts?cve=CVE-2019-19781&state=vulnerable&limit=100", {"Authorization": f"Bearer {token}"}),
    "hosts: organisation + open (API)": (f"/api/v1/hosts?organisation={org}&state=open", {"Authorization": f"Bearer {token}"}),
    "hosts: network /17 + open (API)": ("/api/v1/hosts?network=127.0.128.0/17&state=open&limit=100", {"Authorization": f"Bearer {token}"}),
}
counts_sql = "select cve, state, count(*) from findings group by cve, state"
peer = {
    "overview (API)": "/wachter.json?" + urllib.parse.urlencode({"sql": counts_sql}),
    "hosts: CVE + vulnerable, 100 (API)": "/wachter/findings.json?cve=CVE-2019-19781&state=vulnerable&_size=100",
}

def measure(p, path, headers):
    c = http.client.HTTPConnection("127.0.0.1", p, timeout=120)
    server, client = [], []
    for i in range(rounds + 1):
        t = time.perf_counter()
        c.request("GET", path, headers=headers)
        r = c.getresponse()
        body = r.read()
        elapsed = (time.perf_counter() - t) * 1000
        if r.status != 200:
            sys.exit(f"{path}: {r.status} {body[:200]!r}")
        timing = r.getheader("Server-Timing") or ""
        m = re.search(r"dur=([0-9.]+)", timing)
        if i == 0:
            continue  # warm-up
        client.append(elapsed)
        if m:
            server.append(float(m.group(1)))
    def stats(xs):
        if not xs:
            return None
        xs = sorted(xs)
        return {"median_ms": round(statistics.median(xs), 1), "p95_ms": round(xs[int(0.95 * (len(xs) - 1))], 1)}
    return {"server": stats(server), "client": stats(client), "bytes": len(body)}

results = {"wachter": {}, "datasette": {}}
for name, (path, headers) in ours.items():
    results["wachter"][name] = measure(port, path, headers)
for name, path in peer.items():
    results["datasette"][name] = measure(peer_port, path, {})
json.dump(results, open(f"{out}/results.json", "w"), indent=2)

print(f"\n{'request':40} {'server median':>14} {'server p95':>11} {'client median':>14}   peer (Datasette) client median, ratio")
for name, r in results["wachter"].items():
    s = r["server"] or {"median_ms": float("nan"), "p95_ms": float("nan")}
    line = f"{name:40} {s['median_ms']:>11.1f} ms {s['p95_ms']:>8.1f} ms {r['client']['median_ms']:>11.1f} ms"
    if name in results["datasette"]:
        p = results["datasette"][name]["client"]["median_ms"]
        line += f"   {p:.1f} ms, {r['client']['median_ms'] / p:.2f}x"
    print(line)
worst = max((r["server"]["p95_ms"] for r in results["wachter"].values() if r["server"]), default=float("nan"))
print(f"\nworst server p95: {worst:.1f} ms (target: 200 ms)")
PY
