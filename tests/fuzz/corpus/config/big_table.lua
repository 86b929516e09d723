t = {} for i = 1, 3e6 do t[i] = i end
plugins = t
