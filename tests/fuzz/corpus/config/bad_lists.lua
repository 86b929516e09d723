tail = { { path = 3 }, 4, { nope = "x" } }
email = { url = "smtp://h", routes = { 5, { to = 1 }, { min_severity = "x" } } }
