r = {}
local k = 1
for i = 1, 30 do r[k] = { to = "a@b" }; k = k * 2 end
email = { dir = "o", routes = r }
