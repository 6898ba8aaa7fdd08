"""Prints a received message as JSON, decoded by Python's own e-mail parser.

    python read_mail.py FILE.eml

{"headers": {name: [values...]}, "parts": [{"content_type", "filename", "text"}]}
Header values are decoded (RFC 2047); part bodies are decoded (base64,
quoted-printable) and given as text (UTF-8, replacement characters for bad bytes).
Tests assert on this instead of on the transfer encoding a mail library chose.
"""

import email
import email.policy
import json
import sys


def main(path):
    with open(path, "rb") as f:
        message = email.message_from_binary_file(f, policy=email.policy.default)
    headers = {}
    for name, value in message.items():
        headers.setdefault(name.lower(), []).append(str(value))
    parts = []
    for part in message.walk():
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True) or b""
        parts.append(
            {
                "content_type": part.get_content_type(),
                "filename": part.get_filename(),
                "text": payload.decode("utf-8", errors="replace"),
            }
        )
    json.dump(
        {"headers": headers, "parts": parts, "defects": [str(d) for d in message.defects]},
        sys.stdout,
    )


if __name__ == "__main__":
    main(sys.argv[1])
