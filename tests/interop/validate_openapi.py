"""Check wachter's API against its own OpenAPI document, with the OpenAPI projects' code.

Usage: python validate_openapi.py BASE_URL TOKEN PATH [PATH ...]

Fetches BASE_URL/api/v1/openapi.json, validates the document with
`openapi-spec-validator` (the OpenAPI 3.1 meta-schema and its semantic rules), then
requests every PATH (with query string) from the running server, with the bearer TOKEN
unless the path is prefixed with `anonymous:`, and validates each request and response
with `openapi-core` against the document: the path and its parameters must be described,
the status code documented, and the body must match the schema of that status and content
type. A PATH is requested with GET, or with POST (and no body) when prefixed with `post:`.
A PATH prefixed with `malformed:` breaks the document on purpose (`/api/v1/scans/x` for an
integer id): only its answer is validated. Prefixes combine in any order
(`anonymous:post:/api/v1/...`). Prints a JSON summary on stdout (`checked` maps each PATH
as given to its status); exits 1 on any problem.
"""
import json
import sys
import urllib.error
import urllib.parse
import urllib.request

from openapi_core import Config, OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from openapi_spec_validator import validate


PREFIXES = ("anonymous:", "post:", "malformed:")


def fetch(url, headers, method="GET"):
    data = b"" if method == "POST" else None
    request = urllib.request.Request(url, headers=headers, method=method, data=data)
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def main(base, token, paths):
    problems = []
    status, _, body = fetch(f"{base}/api/v1/openapi.json", {})
    if status != 200:
        print(json.dumps({"problems": [f"openapi.json: status {status}"]}))
        return 1
    document = json.loads(body)
    validate(document)
    # CSV bodies are text to the schema (`type: string`); openapi-core only decodes the
    # media types it knows, so it is told how to read this one.
    config = Config(extra_media_type_deserializers={"text/csv": lambda data: data.decode("utf-8")})
    api = OpenAPI.from_dict(document, config=config)
    checked = {}
    for spec in paths:
        path, given = spec, set()
        while path.startswith(PREFIXES):
            prefix = next(p for p in PREFIXES if path.startswith(p))
            given.add(prefix)
            path = path.removeprefix(prefix)
        anonymous = "anonymous:" in given
        method = "post" if "post:" in given else "get"
        headers = {} if anonymous else {"Authorization": f"Bearer {token}"}
        status, response_headers, body = fetch(f"{base}{path}", headers, method.upper())
        url = urllib.parse.urlsplit(path)
        content_type = response_headers.get("Content-Type", "")  # case-insensitive lookup
        request = MockRequest(
            base,
            method,
            url.path,
            args=dict(urllib.parse.parse_qsl(url.query)),
            headers=headers,
        )
        response = MockResponse(
            body,
            status_code=status,
            headers=dict(response_headers.items()),
            content_type=content_type.split(";")[0].strip(),
        )
        try:
            # A request the server refused (401) is still described; only its security
            # requirement is unmet, which is the point of asking anonymously. A malformed
            # one is not described at all, which is the point of sending it.
            if not anonymous and "malformed:" not in given:
                api.validate_request(request)
            api.validate_response(request, response)
        except Exception as e:  # openapi-core raises one class per kind of mismatch
            detail = getattr(e, "schema_errors", None) or getattr(e, "__cause__", None) or ""
            problems.append(f"{spec}: {status} {type(e).__name__}: {e} {detail}")
        checked[spec] = status
    print(json.dumps({"openapi": document.get("openapi"), "paths": len(document.get("paths", {})),
                      "checked": checked, "problems": problems}, indent=1))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3:]))
