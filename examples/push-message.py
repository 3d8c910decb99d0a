#!/usr/bin/env python3
"""Deliver a sample message with an attachment to ADDRESS over LMTP (default 127.0.0.1:2424).

    python3 examples/push-message.py user@example.com [--host 127.0.0.1] [--port 2424] [--save sent.eml]

Only the standard library is used, so it runs with any Python 3.11+. ``--save`` writes the exact bytes that were
sent, to compare with ``wildduck message export``. An address with non-ASCII characters (``jörg@bücher.example``)
is sent with SMTPUTF8 (RFC 6531: ``MAIL FROM:<...> SMTPUTF8``, UTF-8 in the envelope and the headers).
"""

from __future__ import annotations

import argparse
import smtplib
import sys
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid


def needs_smtputf8(*addresses: str) -> bool:
    """Whether an address can only be sent with SMTPUTF8 (it has a character outside ASCII)."""
    return not all(a.isascii() for a in addresses)


def build_message(to: str) -> bytes:
    msg = EmailMessage(policy=policy.SMTPUTF8 if needs_smtputf8(to) else policy.default)
    msg["From"] = "Sample Sender <sender@example.net>"
    msg["To"] = to
    msg["Subject"] = "Hello from wildduck's push-message.py"
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = make_msgid(domain="example.net")
    msg.set_content(
        "Hi,\n\nthis message was delivered over LMTP by examples/push-message.py.\n"
        "It carries a small attachment, which the server stores once, deduplicated and compressed.\n"
    )
    msg.add_alternative("<p>Hi,</p><p>this message was delivered over <b>LMTP</b>.</p>", subtype="html")
    attachment = b"".join(b"line %04d of the sample attachment\n" % i for i in range(200))
    msg.add_attachment(attachment, maintype="text", subtype="plain", filename="sample.txt")
    return msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("address", help="recipient address (a local user)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2424)
    parser.add_argument("--sender", default="sender@example.net")
    parser.add_argument("--save", help="also write the sent message to this file")
    args = parser.parse_args()

    data = build_message(args.address)
    if args.save:
        with open(args.save, "wb") as f:
            f.write(data)
    # smtplib.LMTP is fine for ONE recipient (it reads a single reply after DATA)
    options = ["SMTPUTF8"] if needs_smtputf8(args.sender, args.address) else []
    try:
        with smtplib.LMTP(args.host, args.port) as lmtp:
            refused = lmtp.sendmail(args.sender, [args.address], data, mail_options=options)
    except smtplib.SMTPNotSupportedError as exc:
        print(f"the server cannot take this address: {exc}", file=sys.stderr)
        return 1
    except smtplib.SMTPRecipientsRefused as exc:
        for rcpt, (code, text) in exc.recipients.items():
            print(f"{rcpt}: refused: {code} {text.decode(errors='replace')}", file=sys.stderr)
        return 1
    except smtplib.SMTPDataError as exc:
        print(f"not delivered: {exc.smtp_code} {exc.smtp_error.decode(errors='replace')}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"cannot connect to LMTP at {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    if refused:
        print(f"refused: {refused}", file=sys.stderr)
        return 1
    print(f"delivered {len(data)} bytes to {args.address}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
