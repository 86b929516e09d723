email = { dir = "outbox", min_severity = "low" }
mllp = { listen = "0.0.0.0:2575" }
