"""Validate a wachter IntelMQ export (JSON Lines) with IntelMQ's own JSON parser bot.

Usage: python validate_intelmq.py EVENTS.jsonl

Runs `JSONParserBot` in library mode (no Redis, no intelmqctl) with `splitlines: true`,
the way a CERT would feed the file into a pipeline. IntelMQ validates every harmonised
key by type; one invalid value raises and rejects the whole report. Then checks that
every exported key and value came out of IntelMQ unchanged (nothing sanitised away).
Prints a JSON summary on stdout; exits 1 on any problem.
"""
import base64
import json
import os
import sys
import tempfile

# Library mode reads no configuration, but keep IntelMQ's state paths out of /opt.
_scratch = tempfile.mkdtemp(prefix="wachter-intelmq-")
os.environ.setdefault("INTELMQ_ROOT_DIR", _scratch)
os.environ.setdefault("INTELMQ_PATHS_NO_OPT", "1")

from intelmq.bots.parsers.json.parser import JSONParserBot  # noqa: E402
from intelmq.lib.bot import BotLibSettings  # noqa: E402

SHOWN = ["source.ip", "source.port", "source.fqdn", "source.asn", "source.network",
         "source.geolocation.cc", "source.abuse_contact", "classification.taxonomy",
         "classification.type", "classification.identifier", "product.vulnerabilities",
         "product.version", "severity", "tlp", "time.source", "feed.name", "feed.provider",
         "extra.state", "extra.hostname", "extra.tlp_2_0"]


def as_dict(message):
    """A queued message as a plain dict of flat keys."""
    if isinstance(message, (str, bytes)):
        return json.loads(message)
    return json.loads(message.serialize() if hasattr(message, "serialize") else json.dumps(message))


def main(path, out):
    with open(path, "rb") as f:
        data = f.read()
    lines = data.splitlines()
    exported = [json.loads(line) for line in lines]
    report = {
        "__type": "Report",
        "raw": base64.b64encode(data).decode(),
        "feed.name": "wachter-export",
        "time.observation": "2026-01-01T00:00:00+00:00",
    }
    try:
        bot = JSONParserBot("wachter-json-parser",
                            settings=BotLibSettings | {"splitlines": True})
        queues = bot.process_message(report)
    except Exception as e:  # IntelMQ raises InvalidValue/InvalidKey for the whole report
        print(json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}), file=out)
        return 1
    events = [as_dict(m) for m in queues.get("output", [])]
    errors = queues.get("error", [])
    problems = []
    if errors:
        problems.append(f"{len(errors)} message(s) went to the error queue")
    if len(events) != len(exported):
        problems.append(f"{len(exported)} lines exported but {len(events)} events parsed")
    for i, (want, got) in enumerate(zip(exported, events)):
        if got.get("__type") not in (None, "Event"):
            problems.append(f"event {i}: type {got.get('__type')}")
        for key, value in want.items():
            if key not in got:
                problems.append(f"event {i}: {key} dropped by IntelMQ")
            elif got[key] != value:
                problems.append(f"event {i}: {key} changed: {value!r} -> {got[key]!r}")
    summary = {
        "ok": not problems,
        "events": len(events),
        "errors": len(errors),
        "problems": problems,
        "shown": [{k: e[k] for k in SHOWN if k in e} for e in events],
    }
    print(json.dumps(summary, ensure_ascii=True), file=out)
    return 0 if not problems else 1


if __name__ == "__main__":
    # The bot logs to stdout, even when it is collected at exit: send file descriptor 1
    # to stderr and keep the real stdout for the summary alone.
    summary_out = os.fdopen(os.dup(1), "w")
    sys.stdout.flush()
    os.dup2(2, 1)
    code = main(sys.argv[1], summary_out)
    summary_out.flush()
    sys.exit(code)
