"""Validate a wachter Shadowserver-style CSV (`scan_http_vulnerable` columns).

Usage: python validate_shadowserver.py REPORT.csv

IntelMQ's Shadowserver parser needs Shadowserver's schema file, which it downloads
(`interchange.shadowserver.org`); tests run offline, so this script applies the
conversions that schema names for `scan_http_vulnerable`, using IntelMQ's own helpers:
`convert_date_utc` (timestamp), `validate_ip`, `validate_fqdn` (hostname ->
source.reverse_dns), `extract_cve_from_tag` (tag -> product.vulnerabilities), and the
harmonisation types of source.port, source.asn, source.geolocation.cc and severity.
Also re-reads the file with Python's csv module: exact header, one line per cell, no
cell a spreadsheet would run as a formula. Prints a JSON summary; exits 1 on problems.
"""
import csv
import json
import re
import sys

from intelmq.bots.parsers.shadowserver import _config as ss
from intelmq.lib import harmonization as h

COLUMNS = ["timestamp", "severity", "ip", "protocol", "port", "hostname", "tag", "asn",
           "geo", "region", "city", "naics", "hostname_source", "sector", "http",
           "http_code", "http_reason", "content_type", "connection", "www_authenticate",
           "set_cookie", "server", "content_length", "transfer_encoding", "http_date",
           "version", "build_date", "detail", "build_branch"]
NUMBER = re.compile(r"^[+-]?[0-9]+(\.[0-9]+)?$")


def main(path):
    problems = []
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header != COLUMNS:
            problems.append(f"header is {header}")
        for n, row in enumerate(reader, start=2):
            if len(row) != len(COLUMNS):
                problems.append(f"line {n}: {len(row)} cells")
                continue
            for name, cell in zip(COLUMNS, row):
                if "\n" in cell or "\r" in cell:
                    problems.append(f"line {n}: {name} spans lines")
                if cell[:1] in ("=", "+", "-", "@", "\t", "\r") and not NUMBER.match(cell):
                    problems.append(f"line {n}: {name} starts a formula: {cell[:20]!r}")
            r = dict(zip(COLUMNS, row))
            event = {}
            time_source = ss.convert_date_utc(r["timestamp"])
            if not h.DateTime.is_valid(time_source):
                problems.append(f"line {n}: timestamp {r['timestamp']!r}")
            event["time.source"] = time_source
            if not ss.validate_ip(r["ip"]):
                problems.append(f"line {n}: ip {r['ip']!r}")
            event["source.ip"] = r["ip"]
            port = ss.convert_int(r["port"])
            if not (port and 0 < port < 65536):
                problems.append(f"line {n}: port {r['port']!r}")
            event["source.port"] = port
            if r["protocol"] != "tcp":
                problems.append(f"line {n}: protocol {r['protocol']!r}")
            if r["severity"] not in ("critical", "high", "medium", "low", "info"):
                problems.append(f"line {n}: severity {r['severity']!r}")
            event["severity"] = r["severity"]
            if r["asn"]:
                if not h.ASN.is_valid(r["asn"], sanitize=True):
                    problems.append(f"line {n}: asn {r['asn']!r}")
                event["source.asn"] = int(r["asn"])
            if r["geo"]:
                if not re.match(r"^[A-Z]{2}$", r["geo"]):
                    problems.append(f"line {n}: geo {r['geo']!r}")
                event["source.geolocation.cc"] = r["geo"]
            reverse_dns = ss.validate_fqdn(r["hostname"])
            if reverse_dns:
                event["source.reverse_dns"] = h.FQDN.sanitize(reverse_dns)
            cves = ss.extract_cve_from_tag(r["tag"])
            if not cves:
                problems.append(f"line {n}: no CVE IntelMQ can read in tag {r['tag']!r}")
            event["product.vulnerabilities"] = cves
            event["extra.tag"] = r["tag"]
            for key in ("http_code", "http_reason", "version", "build_branch", "sector"):
                if r[key]:
                    event[f"extra.{key}"] = r[key]
            event["extra.hostname"] = r["hostname"]
            event["extra.detail"] = r["detail"]
            rows.append(event)
    summary = {"ok": not problems, "rows": len(rows), "problems": problems, "events": rows}
    print(json.dumps(summary, ensure_ascii=True))
    return 0 if not problems and rows else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
