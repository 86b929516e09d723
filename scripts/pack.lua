-- pack.lua: small text and fact helpers the baricitinib plugins share, so
-- that every rule words numbers, doses and unusable results the same way.
-- Pure Lua, no globals, no I/O: it is required inside the rule sandbox.
local pack = {}

--[[
pack.fmt(x) -> the number without float noise ("%.10g").

  Example: pack.fmt(0.1 + 0.2) --> "0.3"
]]
function pack.fmt(x)
  return ("%.10g"):format(x)
end

--[[
pack.dose_text(exposure) -> " 2 mg" for an exposure with a dose, else "".

  The leading space lets rules write "On baricitinib%s since ...".
]]
function pack.dose_text(e)
  if not e.dose then return "" end
  return (" %s %s"):format(pack.fmt(e.dose), e.dose_unit or "mg")
end

--[[
pack.void(obs) -> true for a result without a usable value: no number, or
a status that says it does not count (HL7 table 0085: D deleted, W wrong,
X cannot be obtained).
]]
function pack.void(obs)
  return obs.value == nil or obs.status == "D" or obs.status == "W"
    or obs.status == "X"
end

return pack
