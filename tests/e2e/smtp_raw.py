"""An aiosmtpd handler that keeps each message exactly as the server
decoded it from the SMTP DATA (after undoing dot-stuffing), for byte-exact
comparison: $SMTP_RAW_DIR/NNN.eml and NNN.rcpt (envelope recipients).
Used by tests/e2e/test_mail_sanitize.sh:
    python3 -m aiosmtpd -n -l 127.0.0.1:PORT -c smtp_raw.Raw
"""
import os


class Raw:
    def __init__(self):
        self.dir = os.environ["SMTP_RAW_DIR"]
        self.n = 0

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        base = os.path.join(self.dir, "%03d" % self.n)
        with open(base + ".rcpt", "w") as f:
            f.write(",".join(envelope.rcpt_tos))
        with open(base + ".tmp", "wb") as f:
            f.write(envelope.original_content)
        os.rename(base + ".tmp", base + ".eml")
        return "250 OK"
