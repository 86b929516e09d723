-- The configuration of the container image (Dockerfile): state in the
-- volume /var/lib/pvwatch; MLLP on every interface of the container, as
-- its port is published by 'docker run -p'. Mount your own over
-- /etc/pvwatch/pvwatch.lua for e-mail and the rest (docs/operations.md).
database  = "/var/lib/pvwatch/pvwatch.db"
alert_log = "/var/lib/pvwatch/alerts.jsonl"
inbox     = { path = "/var/lib/pvwatch/inbox" }
mllp      = { listen = "0.0.0.0:2575" }
