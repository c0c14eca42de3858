"""A real SMTP server for Gridwatch's e-mail tests: aiosmtpd with TLS
(STARTTLS required, or implicit TLS) and a login, writing every accepted
message to OUT/NNNN.eml with the envelope and session facts as headers.

Started by tests/src/smtp.rs on a free loopback port; prints READY when it
listens and runs until killed.
"""

import argparse
import logging
import os
import ssl
import sys
import time
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

p = argparse.ArgumentParser()
p.add_argument("--port", type=int, required=True)
p.add_argument("--cert", required=True)
p.add_argument("--key", required=True)
p.add_argument("--mode", choices=["starttls", "implicit"], required=True)
p.add_argument("--user", required=True)
p.add_argument("--password", required=True)
p.add_argument("--out", required=True)
args = p.parse_args()
# aiosmtpd warns about AUTH without STARTTLS in implicit mode, where the
# whole session is TLS; keep the test output clean.
warnings.simplefilter("ignore")
logging.disable(logging.WARNING)


class Sink:
    def __init__(self):
        self.n = 0

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        tls = session.ssl is not None or args.mode == "implicit"
        head = (
            f"X-Sink-Mail-From: {envelope.mail_from}\r\n"
            f"X-Sink-Rcpt-To: {','.join(envelope.rcpt_tos)}\r\n"
            f"X-Sink-Auth-User: {session.auth_data.login.decode() if session.auth_data else ''}\r\n"
            f"X-Sink-TLS: {'yes' if tls else 'no'}\r\n"
        )
        tmp = os.path.join(args.out, f"{self.n:04}.tmp")
        with open(tmp, "wb") as f:
            f.write(head.encode() + envelope.original_content)
        os.rename(tmp, os.path.join(args.out, f"{self.n:04}.eml"))
        return "250 OK"


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == args.user.encode()
        and auth_data.password == args.password.encode()
    )
    return AuthResult(success=ok, handled=False, auth_data=auth_data)


ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(args.cert, args.key)
common = dict(
    hostname="127.0.0.1",
    port=args.port,
    authenticator=authenticate,
    auth_required=True,
)
if args.mode == "starttls":
    controller = Controller(
        Sink(), tls_context=ctx, require_starttls=True, **common
    )
else:
    # Implicit TLS: the whole session is encrypted, so AUTH needs no STARTTLS.
    controller = Controller(
        Sink(), ssl_context=ctx, auth_require_tls=False, **common
    )
controller.start()
print("READY", flush=True)
try:
    while True:
        time.sleep(3600)
except KeyboardInterrupt:
    pass
finally:
    controller.stop()
    sys.exit(0)
