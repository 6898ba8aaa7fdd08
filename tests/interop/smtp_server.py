#!/usr/bin/env python3
"""A real SMTP server on loopback (aiosmtpd) for wachter's mail delivery tests.

Each accepted message is saved as DIR/NNNN.eml (the exact DATA bytes) and DIR/NNNN.json
({mail_from, rcpt_tos, peer, tls, auth_user}); the .json is written last, so its presence
means the message is complete.

    smtp_server.py --dir DIR [--host 127.0.0.1] [--port 0]
                   [--tls-cert CERT --tls-key KEY [--implicit-tls]]
                   [--auth USER:PASS] [--fail-first N]

Prints `ready <port>` on stdout once listening. Stops on SIGTERM, SIGINT or stdin EOF, so
it never outlives the test that started it.

Rejection hooks: a recipient whose local part starts with `reject` gets
`550 5.1.1 mailbox unavailable`, one starting with `tempfail` gets
`451 4.3.0 try again later`; `--fail-first N` answers 451 to the first N messages.
"""

import argparse
import asyncio
import json
import logging
import os
import signal
import ssl
import sys
import threading
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

LOOPBACK = {"127.0.0.1", "::1"}


class Handler:
    def __init__(self, directory, fail_first):
        self.directory = directory
        self.fail_first = fail_first
        self.data_seen = 0
        self.saved = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.rsplit("@", 1)[0].lower()
        if local.startswith("reject"):
            return "550 5.1.1 mailbox unavailable"
        if local.startswith("tempfail"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.data_seen += 1
        if self.data_seen <= self.fail_first:
            return "451 4.3.0 try again later"
        self.saved += 1
        stem = os.path.join(self.directory, f"{self.saved:04d}")
        transport = server.transport
        tls = transport is not None and transport.get_extra_info("ssl_object") is not None
        auth_user = session.auth_data if session.authenticated else None
        peer = list(session.peer) if session.peer else None
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "peer": peer,
            "tls": tls,
            "auth_user": auth_user,
        }
        write_atomic(stem + ".eml", envelope.original_content or b"")
        write_atomic(stem + ".json", json.dumps(meta, indent=1).encode())
        return f"250 2.0.0 Message accepted as {self.saved:04d}"


def write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def make_authenticator(user, password):
    def authenticator(server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ok = auth_data.login == user.encode() and auth_data.password == password.encode()
        login = auth_data.login.decode("utf-8", "replace") if ok else None
        return AuthResult(success=ok, handled=False, auth_data=login)

    return authenticator


def watch_stdin(loop, stop):
    """Stop at stdin EOF: the test holds the pipe, so a dead test means a stopped server."""
    fd = sys.stdin.fileno()

    def readable():
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(fd)
            stop.set()

    try:
        os.set_blocking(fd, False)
        loop.add_reader(fd, readable)
    except (OSError, ValueError, PermissionError):
        # Not pollable (a regular file, /dev/null): a thread reads it instead.
        os.set_blocking(fd, True)

        def read_all():
            try:
                while os.read(fd, 4096):
                    pass
            except OSError:
                pass
            loop.call_soon_threadsafe(stop.set)

        threading.Thread(target=read_all, daemon=True).start()


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dir", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--implicit-tls", action="store_true")
    p.add_argument("--auth", metavar="USER:PASS")
    p.add_argument("--fail-first", type=int, default=0)
    p.add_argument("--verbose", action="store_true", help="log aiosmtpd's session errors")
    args = p.parse_args()
    if args.host not in LOOPBACK:
        p.error("only a loopback address may be bound (127.0.0.1 or ::1)")
    if bool(args.tls_cert) != bool(args.tls_key):
        p.error("--tls-cert and --tls-key go together")
    if args.implicit_tls and not args.tls_cert:
        p.error("--implicit-tls needs --tls-cert and --tls-key")
    if args.auth is not None and ":" not in args.auth:
        p.error("--auth takes USER:PASS")
    return args


async def serve(args):
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    context = None
    if args.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)

    handler = Handler(args.dir, args.fail_first)
    smtp_kwargs = {
        "hostname": "wachter-test-smtp",  # avoids a DNS lookup of our own name
        "enable_SMTPUTF8": True,
        "loop": loop,
    }
    if args.auth is not None:
        user, password = args.auth.split(":", 1)
        smtp_kwargs.update(
            authenticator=make_authenticator(user, password),
            auth_required=True,
            # With implicit TLS the whole connection is TLS already; otherwise AUTH
            # is only offered after STARTTLS.
            auth_require_tls=not args.implicit_tls,
        )
    if context is not None and not args.implicit_tls:
        smtp_kwargs["tls_context"] = context

    server = await loop.create_server(
        lambda: SMTP(handler, **smtp_kwargs),
        host=args.host,
        port=args.port,
        ssl=context if args.implicit_tls else None,
    )
    port = server.sockets[0].getsockname()[1]

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    watch_stdin(loop, stop)

    print(f"ready {port}", flush=True)
    await stop.wait()
    server.close()
    try:
        await asyncio.wait_for(server.wait_closed(), timeout=2)
    except asyncio.TimeoutError:
        pass  # a client still connected; the process exits anyway


def main():
    args = parse_args()
    os.makedirs(args.dir, exist_ok=True)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if not args.verbose:
        # Tests provoke failed handshakes and AUTH without STARTTLS on purpose; the
        # client's error is what they check, the server's traceback is noise.
        logging.getLogger("mail.log").setLevel(logging.CRITICAL)
        warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
