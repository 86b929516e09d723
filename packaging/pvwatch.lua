-- The system configuration that pvwatch.service runs with
-- (/etc/pvwatch/pvwatch.lua). Every key is optional: see
-- /usr/share/doc/pvwatch/examples/pvwatch.lua for all of them and
-- 'pvwatch check -c /etc/pvwatch/pvwatch.lua' after each change. The rule
-- pack is the installed one (/usr/share/pvwatch/{plugins,scripts}) unless
-- 'plugins' and 'scripts' name others. The unit may write only under
-- /var/lib/pvwatch (ReadWritePaths).
database  = "/var/lib/pvwatch/pvwatch.db"
alert_log = "/var/lib/pvwatch/alerts.jsonl"
inbox     = { path = "/var/lib/pvwatch/inbox" }
mllp      = { listen = "127.0.0.1:2575" }
-- email = { url = "smtp://mail.example.org:587", to = { "pv@example.org" },
--           password_file = "/etc/pvwatch/smtp-password" }
