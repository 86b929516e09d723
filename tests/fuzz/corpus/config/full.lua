database = "pv.db"
alert_log = "alerts.jsonl"
plugins = { "plugins", "/abs/plugins" }
scripts = "scripts"
inbox = { path = "inbox", settle = 0.3, rescan_interval = 0.2 }
tail = { { path = "feed.csv" }, "other.csv" }
mllp = { listen = "127.0.0.1:0", max_message = 32768, idle_timeout = 5, max_connections = 2000, assigning_authority = "E2E" }
email = { url = "smtp://127.0.0.1:2525", tls = "starttls", username = "pv", password_env = "PW",
          password_file = "pw.txt", insecure = true, from = "pv@example.org", to = { "a@example.org" },
          min_severity = "medium", timeout = 10, max_attempts = 8, retry_base = 5, retry_cap = 3600,
          digest_interval = 86400, digest_severity = "low",
          routes = { { to = { "oncall@example.org" }, min_severity = "critical", signals = { "engine", "lab" } } } }
exposure = { washout_days = 28 }
label = { indication = "covid19", region = "eu" }
limits = { rule_instructions = 1e6, rule_memory = 8 * 1024 * 1024 }
