#!/usr/bin/python3
"""A real SMTP server (aiosmtpd, Debian's python3-aiosmtpd) for tessera's tests.

Usage: smtp_server.py DIR [--tls CERT KEY] [--auth USER PASSWORD]

Listens on a free port of 127.0.0.1, prints "ready PORT", writes each message it accepts to
DIR/NNNN.eml (envelope, TLS and AUTH facts as X- headers first), and stops when stdin closes.
With --tls it offers STARTTLS and requires it; with --auth it requires AUTH (PLAIN or LOGIN).
"""
import os
import socket
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Handler:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        path = os.path.join(self.directory, "%04d.eml" % self.count)
        facts = [
            "X-Envelope-From: %s" % envelope.mail_from,
            "X-Envelope-To: %s" % ",".join(envelope.rcpt_tos),
            "X-TLS: %s" % ("yes" if session.ssl else "no"),
            # The authenticator accepts only the configured user and password.
            "X-Auth: %s" % ("yes" if session.authenticated else "no"),
        ]
        with open(path + ".tmp", "wb") as f:
            f.write(("\r\n".join(facts) + "\r\n").encode())
            f.write(envelope.original_content or envelope.content)
        os.rename(path + ".tmp", path)
        return "250 Message accepted for delivery"


def main():
    args = sys.argv[1:]
    directory = args.pop(0)
    kwargs = {}
    while args:
        opt = args.pop(0)
        if opt == "--tls":
            cert, key = args.pop(0), args.pop(0)
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(cert, key)
            kwargs.update(tls_context=ctx, require_starttls=True)
        elif opt == "--auth":
            user, password = args.pop(0).encode(), args.pop(0).encode()

            def authenticator(server, session, envelope, mechanism, auth_data):
                ok = (isinstance(auth_data, LoginPassword)
                      and auth_data.login == user and auth_data.password == password)
                # handled=False: aiosmtpd answers 535 itself on a failure.
                return AuthResult(success=ok, handled=False)

            kwargs.update(authenticator=authenticator, auth_required=True)
        else:
            sys.exit("unknown option " + opt)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    controller = Controller(Handler(directory), hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    print("ready %d" % port, flush=True)
    sys.stdin.read()
    controller.stop()


main()
