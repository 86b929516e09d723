t = {}
local k = 1
for i = 1, 62 do t[k] = "p"; k = k * 2 end
plugins = t
