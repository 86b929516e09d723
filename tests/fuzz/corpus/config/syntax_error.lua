database = "pv.db"
mllp = { listen = 
