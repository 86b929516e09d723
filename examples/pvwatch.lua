-- An example configuration. Every key is optional; relative paths are
-- relative to this file. 'pvwatch check -c examples/pvwatch.lua' checks it.
database  = "pvwatch.db"
-- or: database = { path = "pvwatch.db", walbuf = false }   -- SQLite's own WAL writes
plugins   = { "../plugins" }
scripts   = { "../scripts" }
alert_log = "alerts.jsonl"
-- log_format = "json"  -- stderr as one JSON object a line (default "text")
-- log_level  = "info"  -- error, warning, info or debug
inbox     = { path = "inbox", settle = 0.5, rescan_interval = 2 }
tail      = { { path = "feeds/labs-live.csv" } }
exposure  = { washout_days = 28 }
label     = { indication = "ra", region = "us" }
limits    = { rule_instructions = 1e6, rule_memory = 8 * 1024 * 1024 }
