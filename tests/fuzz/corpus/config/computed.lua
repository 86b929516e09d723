database = "pv.db"
mllp = { listen = "[::1]:2575" }
local x = 1
for i = 1, 10 do x = x + i end
limits = { rule_instructions = x * 1000 }
