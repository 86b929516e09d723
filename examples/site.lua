-- examples/site.lua: a site's own code sets (docs/rules.md, "Site code
-- sets").  Copy it to a scripts directory of the configuration as site.lua
-- (for example scripts = { "/usr/share/pvwatch/scripts",
-- "/etc/pvwatch/scripts" } with this file as /etc/pvwatch/scripts/site.lua).
-- pvwatch loads it after scripts/codes.lua, before any rule, in every
-- plugin; what it adds is seen by every rule and by the exposure gate, and
-- the pack's own codes stay.  A mistake here (an unknown set, a code of
-- the wrong shape) is a load error naming this file and line:
-- 'pvwatch check' shows it, and a running engine keeps its old rules.
local codes = require "codes"

-- Voclosporin, a calcineurin inhibitor like ciclosporin, as a potent
-- immunosuppressant for baricitinib.combination (the label: "potent
-- immunosuppressants such as ciclosporin", domain §1.9).  The ATC code and
-- the brand are this example's, from memory: UNVERIFIED.
codes.extend("immunosuppressants", {
  { name = "voclosporin", brands = { "lupkynis" }, atc = { "L04AD03" } },
})

-- More identifiers of baricitinib, e.g. the site's formulary NDC of the
-- 2 mg tablet (domain §3.2 lists 0002-4182 as UNVERIFIED; the pack has it
-- already, so this line adds nothing, which is allowed).
codes.extend("baricitinib", { ndc = { "0002-4182" } })
