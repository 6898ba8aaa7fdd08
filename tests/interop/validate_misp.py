"""Validate a wachter MISP export with PyMISP.

Usage: python validate_misp.py EVENT.json

Loads the event with `MISPEvent().load(...)`, then round-trips it through `to_json()`
and loads it again (pymisp deprecates `validate=True`, its JSON-schema check). Checks what MISP would check on
import: attribute types and categories from MISP's describeTypes, object attributes
against pymisp's object template (relation names, types, categories, requiredOneOf),
that references point at an attribute or object of the event, and that the TLP tag is
one of MISP's `tlp` taxonomy. Warnings logged by pymisp count as problems. Prints a JSON
summary on stdout; exits 1 on any problem.
"""
import json
import logging
import sys
import warnings

from pymisp import MISPEvent
from pymisp.abstract import describe_types

TLP_TAGS = {"tlp:clear", "tlp:white", "tlp:green", "tlp:amber", "tlp:amber+strict", "tlp:red"}


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def check_attribute(where, a, problems, template=None):
    types = describe_types["types"]
    cats = describe_types["category_type_mappings"]
    if a.type not in types:
        problems.append(f"{where}: unknown type {a.type}")
    if a.category not in cats or a.type not in cats[a.category]:
        problems.append(f"{where}: category {a.category!r} does not allow {a.type}")
    if template is not None:
        spec = template["attributes"].get(a.object_relation)
        if spec is None:
            problems.append(f"{where}: relation {a.object_relation!r} not in the template")
        else:
            if spec["misp-attribute"] != a.type:
                problems.append(f"{where}: {a.object_relation} should be {spec['misp-attribute']}")
            if "categories" in spec and a.category not in spec["categories"]:
                problems.append(f"{where}: category {a.category!r} not in {spec['categories']}")
    if not str(a.value).strip():
        problems.append(f"{where}: empty value")


def main(path):
    collect = Collect()
    logging.getLogger("pymisp").addHandler(collect)
    problems = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with open(path, encoding="utf-8") as f:
            text = f.read()
        event = MISPEvent()
        try:
            event.load(text)
            again = MISPEvent()
            again.load(event.to_json())
        except Exception as e:
            print(json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}))
            return 1
    problems += [f"warning: {w.message}" for w in caught]
    problems += [f"pymisp: {m}" for m in collect.messages]

    known = {a.uuid for a in event.attributes} | {o.uuid for o in event.objects}
    for a in event.attributes:
        check_attribute(f"attribute {a.uuid}", a, problems)
    for o in event.objects:
        template = getattr(o, "_definition", None)
        if not template:
            problems.append(f"object {o.uuid}: pymisp has no template {o.name!r}")
            continue
        relations = {a.object_relation for a in o.attributes}
        required = template.get("requiredOneOf", [])
        if required and not relations & set(required):
            problems.append(f"object {o.uuid}: none of {required}")
        for a in o.attributes:
            check_attribute(f"object {o.uuid} {a.object_relation}", a, problems, template)
        for r in o.references:
            if r.referenced_uuid not in known:
                problems.append(f"object {o.uuid}: reference to unknown {r.referenced_uuid}")
    tags = [t.name for t in event.tags]
    if not any(t in TLP_TAGS for t in tags):
        problems.append(f"no TLP tag of MISP's tlp taxonomy in {tags}")
    if event.to_json() != again.to_json():
        problems.append("round trip changed the event")

    def values(o, relation):
        return [a.value for a in o.attributes if a.object_relation == relation]

    summary = {
        "ok": not problems,
        "uuid": event.uuid,
        "info": event.info,
        "distribution": int(event.distribution),
        "threat_level_id": int(event.threat_level_id),
        "tags": tags,
        "attributes": [{"type": a.type, "value": a.value} for a in event.attributes],
        "objects": len(event.objects),
        "object_names": sorted({o.name for o in event.objects}),
        "ips": [v for o in event.objects for v in values(o, "ip")],
        "hostnames": [v for o in event.objects for v in values(o, "hostname")],
        "references": [r.relationship_type for o in event.objects for r in o.references],
        "problems": problems,
    }
    print(json.dumps(summary, ensure_ascii=True, default=str))
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
