#!/usr/bin/env bash
# A campaign at country scale: N vulnerable NetScalers (real lab records, default 20,000)
# owned by N/20 organisations, told in one campaign, delivered over SMTP on loopback.
#
#   bash bench/campaign.sh
#   N=100000 bash bench/campaign.sh
#
# wachter's side: `campaign new --dry-run` (plan, render every message in its contact's
# language, compose MIME with the CSV attachment, write .eml/.txt/.html), `campaign new`
# (the same, queued in the store's outbox) and `outbox send` to a local aiosmtpd server.
# The peer is what a CERT writes today: a Python mail-merge (stdlib `email`, a template per
# language, a CSV attachment) over the same findings read straight from the store, and
# `smtplib` sending the same messages to the same server (one connection per message, as
# wachter does).
set -euo pipefail
N=${N:-20000}
here=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$here/bench/out/campaign}
rm -rf "$out"
mkdir -p "$out"
command -v sqlite3 >/dev/null || { apt-get update -qq && apt-get install -y -qq sqlite3 >/dev/null; }
eval "$(bash "$here/.ci/interop-python")"
(cd "$here" && cargo build --release -q -p wachter)
wachter=$here/target/release/wachter
db=$out/campaign.db

# One real record of a vulnerable appliance, from a lab scan.
"$wachter" demo --no-serve --db "$out/demo.db" >/dev/null 2>&1 || true
sqlite3 "$out/demo.db" "SELECT o.record FROM observations o JOIN services s ON s.id = o.service_id WHERE s.ip = '127.77.0.13'" >"$out/template.json"

# N copies on distinct addresses (127.100.0.0 upwards, 20 per /24: one organisation each),
# and the organisations with one security contact, every other one Dutch.
python3 - "$N" "$out" <<'PY'
import json, sys
n, out = int(sys.argv[1]), sys.argv[2]
record = json.load(open(f"{out}/template.json"))
with open(f"{out}/records.jsonl", "w") as f:
    for i in range(n):
        net, host = divmod(i, 20)
        record["ip"] = f"127.{100 + net // 256}.{net % 256}.{host + 1}"
        f.write(json.dumps(record) + "\n")
with open(f"{out}/orgs.toml", "w") as f:
    for net in range((n + 19) // 20):
        f.write(f'[[organisation]]\nname = "Organisation {net}"\nsector = "healthcare"\n')
        f.write(f'networks = ["127.{100 + net // 256}.{net % 256}.0/24"]\n')
        lang = "nl" if net % 2 else "en"
        f.write(f'[[organisation.contacts]]\nemail = "soc@org{net}.test"\nlanguage = "{lang}"\n\n')
PY
"$wachter" import "$out/records.jsonl" --format wachter --db "$db" >/dev/null
"$wachter" org import "$out/orgs.toml" --db "$db" >/dev/null
"$wachter" attribute --db "$db" >/dev/null

# A loopback SMTP server that keeps every message.
mkdir -p "$out/received" "$out/received-peer"
coproc SMTP { exec "$CI_INTEROP_PYTHON" "$here/tests/interop/smtp_server.py" --host 127.0.0.1 --port 0 --dir "$out/received"; }
read -r _ port <&"${SMTP[0]}"
cat >"$out/wachter.toml" <<EOF
[notify]
reporter = "Bench CERT"
from = "Bench CERT <cert@bench-cert.test>"
[notify.smtp]
host = "127.0.0.1"
port = $port
security = "none"
[notify.send]
rate_per_minute = 0
recipient_gap_secs = 0
EOF

timed() { # name, command...: wall seconds and peak RSS (KB) into $out/NAME.time
    local name=$1; shift
    /usr/bin/time -f '%e %M' -o "$out/$name.time" "$@" >"$out/$name.out" 2>"$out/$name.err" \
        || { echo "bench/campaign.sh: $name failed:"; tail -5 "$out/$name.err"; exit 1; }
}
timed dry-run "$wachter" --config "$out/wachter.toml" campaign new --cve CVE-2019-19781 --db "$db" --dry-run "$out/review" --json
timed queue "$wachter" --config "$out/wachter.toml" campaign new --cve CVE-2019-19781 --db "$db" --json
timed send "$wachter" --config "$out/wachter.toml" outbox send --db "$db" --json

# The peer mail-merge, reading the same findings and evidence from the same store.
cat >"$out/mailmerge.py" <<'PY'
import csv, email.policy, io, json, os, sqlite3, sys
from email.message import EmailMessage
from email.utils import formatdate
from string import Template

db, target = sys.argv[1], sys.argv[2]
os.makedirs(target, exist_ok=True)
TEXT = {
    "en": Template("Dear colleagues at $org,\n\n$count Citrix NetScaler hosts of yours are open to CVE-2019-19781.\n\n$hosts\nKind regards,\nBench CERT\n"),
    "nl": Template("Beste collega's van $org,\n\n$count Citrix NetScaler-systemen van u zijn kwetsbaar voor CVE-2019-19781.\n\n$hosts\nMet vriendelijke groet,\nBench CERT\n"),
}
HOST = Template("$ip:$port  $state  build $build\n  Request:  $request\n  Response: $status\n  Excerpt:  $excerpt\n\n")
rows = sqlite3.connect(db).execute("""
    SELECT org.name, c.email, c.language, s.ip, s.port, f.state, f.last_seen,
           (SELECT o.record FROM observations o WHERE o.service_id = s.id AND o.status = 'open' ORDER BY o.id DESC LIMIT 1)
    FROM findings f JOIN services s ON s.id = f.service_id
    JOIN attributions a ON a.service_id = s.id JOIN organisations org ON org.id = a.organisation_id
    JOIN contacts c ON c.organisation_id = org.id
    WHERE f.cve = 'CVE-2019-19781' AND f.state IN ('vulnerable', 'mitigated') ORDER BY org.name, s.ip""")
groups = {}
for org, address, lang, ip, port, state, seen, record in rows:
    groups.setdefault((org, address, lang or "en"), []).append((ip, port, state, seen, json.loads(record)))
for n, ((org, address, lang), hosts) in enumerate(groups.items(), 1):
    lines, table = [], io.StringIO()
    w = csv.writer(table)
    w.writerow(["timestamp", "ip", "port", "state", "version", "detail"])
    for ip, port, state, seen, record in hosts:
        check = record["checks"][0]
        p1 = next(x for x in record["http"] if x["name"] == check["probe"]["evidence"][0])
        lines.append(HOST.substitute(ip=ip, port=port, state=state, build=check["build"]["version"],
                                     request=p1["request"].split("\r\n")[0], status=p1["status_line"],
                                     excerpt=p1["body"][:200].replace("\n", "⏎")))
        w.writerow([seen, ip, port, state, check["build"]["version"], check["probe"]["reason"]])
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Date"] = "Bench CERT <cert@bench-cert.test>", address, formatdate()
    msg["Subject"] = f"[TLP:AMBER] [PEER-{n}] CVE-2019-19781: {len(hosts)} hosts at {org}"
    msg["Message-ID"] = f"<PEER-{n}@bench-cert.test>"
    msg.set_content(TEXT[lang].substitute(org=org, count=len(hosts), hosts="".join(lines)))
    msg.add_attachment(table.getvalue().encode(), maintype="text", subtype="csv", filename=f"PEER-{n}.csv")
    with open(f"{target}/PEER-{n}.eml", "wb") as f:
        f.write(msg.as_bytes(policy=email.policy.SMTP))
print(json.dumps({"messages": len(groups)}))
PY
timed peer-merge python3 "$out/mailmerge.py" "$db" "$out/peer"

# The peer sender: smtplib, one connection per message, the same server.
cat >"$out/send.py" <<'PY'
import glob, json, smtplib, sys
port, folder = int(sys.argv[1]), sys.argv[2]
files = sorted(glob.glob(f"{folder}/*.eml"))
for path in files:
    data = open(path, "rb").read()
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.sendmail("cert@bench-cert.test", ["soc@peer.test"], data)
print(json.dumps({"sent": len(files)}))
PY
timed peer-send python3 "$out/send.py" "$port" "$out/peer"
kill "$SMTP_PID" 2>/dev/null || true

python3 - "$out" "$N" <<'PY'
import json, sys
out, n = sys.argv[1], int(sys.argv[2])
t = {k: tuple(map(float, open(f"{out}/{k}.time").read().split())) for k in
     ("dry-run", "queue", "send", "peer-merge", "peer-send")}
messages = len(json.load(open(f"{out}/queue.out"))["messages"])
sent = len(json.load(open(f"{out}/send.out"))["sent"])
peer = json.load(open(f"{out}/peer-merge.out"))["messages"]
assert messages == peer == sent, (messages, peer, sent)
def line(name, secs, rss, unit=messages):
    return f"{name:<28} {secs:7.2f} s  {unit / secs:9.0f} msg/s  {n / secs:9.0f} findings/s  {rss / 1024:7.1f} MB"
print(f"{n} findings, {messages} messages (one per organisation)")
print(line("wachter campaign --dry-run", *t["dry-run"]))
print(line("wachter campaign (queue)", *t["queue"]))
print(line("python mail-merge (peer)", *t["peer-merge"]))
print(f"{'wachter outbox send':<28} {t['send'][0]:7.2f} s  {sent / t['send'][0]:9.0f} msg/s                       {t['send'][1] / 1024:7.1f} MB")
print(f"{'python smtplib (peer)':<28} {t['peer-send'][0]:7.2f} s  {peer / t['peer-send'][0]:9.0f} msg/s                       {t['peer-send'][1] / 1024:7.1f} MB")
print(f"ratios (peer time / wachter time): compose+queue {t['peer-merge'][0] / t['queue'][0]:.2f}x, "
      f"dry run {t['peer-merge'][0] / t['dry-run'][0]:.2f}x, send {t['peer-send'][0] / t['send'][0]:.2f}x")
PY
