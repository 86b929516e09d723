database = 42
plugins = { 1, 2 }
mllp = { max_message = "big", idle_timeout = -1, max_connections = 1.5 }
