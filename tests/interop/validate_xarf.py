"""Validate a wachter X-ARF v4 export (JSON Lines) with the `xarf` package.

Usage: python validate_xarf.py REPORTS.jsonl

`xarf.parse` checks each report against the XARF v4 JSON schemas (core and
vulnerability/cve) and builds its typed model. Errors fail; so do warnings, which
include fields the schema does not know (strict receivers reject those). Also checks
that each evidence item's hash and size match its decoded payload. Prints a JSON summary
on stdout; exits 1 on any problem.
"""
import base64
import hashlib
import json
import sys
import uuid

import xarf


def main(path):
    problems = []
    reports = []
    with open(path, encoding="utf-8") as f:
        lines = [line for line in f.read().split("\n") if line]
    for i, line in enumerate(lines):
        result = xarf.parse(line)
        for e in result.errors:
            problems.append(f"report {i}: error: {e}")
        for w in result.warnings:
            problems.append(f"report {i}: warning: {w}")
        if result.report is None:
            problems.append(f"report {i}: no report model built")
            continue
        data = json.loads(line)
        if uuid.UUID(data["report_id"]).version != 4:
            problems.append(f"report {i}: report_id is not a UUIDv4")
        for item in data.get("evidence", []):
            payload = base64.b64decode(item["payload"], validate=True)
            if item.get("hash") != "sha256:" + hashlib.sha256(payload).hexdigest():
                problems.append(f"report {i}: evidence hash does not match the payload")
            if item.get("size") != len(payload):
                problems.append(f"report {i}: evidence size does not match the payload")
        r = result.report
        reports.append({
            "class": type(r).__name__,
            "category": r.category,
            "type": r.type,
            "source_identifier": r.source_identifier,
            "cve_id": getattr(r, "cve_id", None),
            "service_port": getattr(r, "service_port", None),
            "tags": list(getattr(r, "tags", None) or []),
            "evidence": len(getattr(r, "evidence", None) or []),
            "transcript": base64.b64decode(data["evidence"][0]["payload"]).decode("utf-8")
            if data.get("evidence") else None,
        })
    summary = {"ok": not problems, "reports": len(reports), "lines": len(lines),
               "problems": problems, "parsed": reports}
    print(json.dumps(summary, ensure_ascii=True))
    return 0 if not problems and reports and len(reports) == len(lines) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
