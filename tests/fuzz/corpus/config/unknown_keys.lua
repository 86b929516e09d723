databse = "pv.db"
mllp = { lisen = "127.0.0.1:2575" }
