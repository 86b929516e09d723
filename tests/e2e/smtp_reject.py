"""smtp_reject: an aiosmtpd handler that refuses every recipient (test_email.sh).

    PYTHONPATH=tests/e2e SMTP_REJECT_LOG=rcpt.log \
        /usr/bin/python3 -m aiosmtpd -n -l 127.0.0.1:PORT -c smtp_reject.Reject

Each RCPT TO is answered '550' (a permanent failure) and, when
SMTP_REJECT_LOG names a file, logged there one line per attempt, so the test
can count how often the client tried.
"""
import os


class Reject:
    async def handle_RCPT(self, server, session, envelope, address,
                          rcpt_options):
        log = os.environ.get("SMTP_REJECT_LOG")
        if log:
            with open(log, "a", encoding="utf-8") as f:
                f.write("RCPT %s\n" % address)
        return "550 5.1.1 <%s>: recipient rejected (test server)" % address
