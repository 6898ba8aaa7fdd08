"""Validate a wachter STIX 2.1 export with the OASIS `stix2` library.

Usage: python validate_stix.py BUNDLE.json

`stix2.parse(..., allow_custom=False)` must accept the bundle. Then checks what stix2
does not: every reference points at an object in the bundle, every object carries a
marking whose marking-definition is in the bundle, and SCO ids are the deterministic
ids stix2 itself computes from their id-contributing properties. Prints a JSON summary
on stdout; exits 1 on any problem.
"""
import collections
import json
import sys

import stix2

SCO_CLASSES = {
    "ipv4-addr": (stix2.v21.IPv4Address, ["value"]),
    "ipv6-addr": (stix2.v21.IPv6Address, ["value"]),
    "domain-name": (stix2.v21.DomainName, ["value"]),
    "network-traffic": (stix2.v21.NetworkTraffic,
                        ["start", "end", "src_ref", "dst_ref", "src_port", "dst_port",
                         "protocols"]),
}


def refs_of(obj):
    for key, value in obj.items():
        if key.endswith("_ref") and isinstance(value, str):
            yield key, value
        elif key.endswith("_refs") and isinstance(value, list):
            for v in value:
                yield key, v


def main(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        bundle = stix2.parse(text, allow_custom=False)
    except Exception as e:
        print(json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}))
        return 1
    raw = json.loads(text)["objects"]
    ids = {o["id"] for o in raw}
    problems = []
    for o in raw:
        for key, ref in refs_of(o):
            if key == "object_marking_refs":
                continue
            if ref not in ids:
                problems.append(f"{o['id']}: {key} -> {ref} not in the bundle")
        if o["type"] != "marking-definition":
            marks = o.get("object_marking_refs", [])
            if not marks:
                problems.append(f"{o['id']}: no object_marking_refs")
            for m in marks:
                if m not in ids:
                    problems.append(f"{o['id']}: marking {m} not in the bundle")
        if o["type"] in SCO_CLASSES:
            cls, keys = SCO_CLASSES[o["type"]]
            expected = cls(**{k: o[k] for k in keys if k in o}).id
            if expected != o["id"]:
                problems.append(f"{o['id']}: deterministic id should be {expected}")
    counts = collections.Counter(o.type for o in bundle.objects)
    markings = [{"id": o.id, "name": o.get("name"),
                 "tlp_2_0": next(iter(o.get("extensions", {}).values()), {}).get("tlp_2_0")}
                for o in bundle.objects if o.type == "marking-definition"]
    sightings = [{"sighting_of_ref": s.sighting_of_ref, "count": s.count,
                  "first_seen": str(s.first_seen), "last_seen": str(s.last_seen),
                  "state": s.description.split("\n")[0]}
                 for s in bundle.objects if s.type == "sighting"]
    summary = {
        "ok": not problems,
        "objects": len(bundle.objects),
        "counts": dict(sorted(counts.items())),
        "markings": markings,
        "vulnerabilities": sorted(o.name for o in bundle.objects if o.type == "vulnerability"),
        "addresses": [o.value for o in bundle.objects if o.type in ("ipv4-addr", "ipv6-addr")],
        "domains": [o.value for o in bundle.objects if o.type == "domain-name"],
        "sightings": sightings,
        "problems": problems,
    }
    print(json.dumps(summary, ensure_ascii=True))
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
