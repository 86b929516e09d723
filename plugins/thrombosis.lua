-- plugins/thrombosis.lua: thrombosis on baricitinib (DESIGN.md rule pack,
-- signal "thrombosis"; domain §1.2, §1.8, §3.3, §6 case 25).
--
-- baricitinib.vte                  I26 pulmonary embolism, I82.4 acute DVT
--                                  of the lower extremity; critical
-- baricitinib.arterial_thrombosis  I74 arterial embolism and thrombosis,
--                                  I63 cerebral infarction, I21 acute MI;
--                                  critical
-- baricitinib.ddimer               D-dimer (LOINC 48065-7, 48066-5) above
--                                  the record's reference range; medium
--
-- All fire while the patient is exposed (patient:exposed, washout
-- included).  An exposure that arrives after the fact looks back at the
-- facts its window covers (pack.when_exposed), so the order of arrival
-- does not matter.  Chronic PE (I27.82) and a history of PE
-- (Z86.711) are not in the sets (domain §3.3).
--
-- Label basis: "Thrombosis has occurred in patients treated with OLUMIANT"
-- (US boxed warning, USPI-HL22); EU: "Discontinue treatment in patients w/
-- suspected VTE regardless of dose or indication" (MIMS-TH).  The exact US
-- W&P wording ("if symptoms of thrombosis occur, discontinue") is
-- UNVERIFIED in domain §1.8, so the actions quote the EU text for VTE and
-- the boxed warning for arterial events.
local codes = require "codes"
local pack = require "pack"
local fmt = pack.fmt

-- category(code) is the ICD-10-CM category: "I82.401" -> "I82".
local function category(code)
  return (code or ""):upper():gsub("[%.%s]", ""):sub(1, 3)
end

local function describe(event, exposure, patient)
  return ("ICD-10-CM %s%s with onset %s%s. %s.")
    :format(event.code or "?",
      event.term and (" '" .. event.term .. "'") or "",
      pv.date(event.onset),
      event.outcome and ("; outcome: " .. event.outcome) or "",
      pack.On(exposure, event.onset, patient))
end

-- exposure_rule(spec) builds a rule that judges a fact (event or lab) when
-- it arrives during an exposure, and the facts an exposure covers when the
-- exposure arrives later.  spec: name, description, on (trigger table
-- without the exposure), kind ("event" or "lab"), set, assess(fact,
-- exposure, patient) -> alert or nil.
local function exposure_rule(spec)
  local on = { exposure = "baricitinib" }
  on[spec.kind] = spec.set
  return pv.rule {
    name = spec.name,
    signal = "thrombosis",
    description = spec.description,
    label = spec.label, severities = spec.severities,
    on = on,
    when = pack.when_exposed {
      labs = spec.kind == "lab" and spec.set or nil,
      events = spec.kind == "event" and spec.set or nil,
      assess = spec.assess,
    },
  }
end

-- baricitinib.vte.  Grade: CTCAE v5 "Thromboembolic event" gives
-- pulmonary embolism as its grade 3 example ("Urgent medical intervention
-- indicated (e.g., pulmonary embolism ...)"; domain §2, §6 case 25), so
-- I26 carries grade 3; a DVT's grade needs clinical facts the code does
-- not carry, so it has none.
local vte = exposure_rule {
  name = "baricitinib.vte", kind = "event", set = "vte",
  label = "Thrombosis has occurred in patients treated with OLUMIANT; "
    .. "pulmonary embolism, venous and arterial thrombosis (USPI-HL22 "
    .. "5.5); EU: discontinue in patients with suspected VTE (MIMS-TH; "
    .. "domain §1.8)",
  severities = { "critical" },
  description = "venous thromboembolism (PE, lower-limb DVT) while "
    .. "exposed to baricitinib",
  assess = function(event, exposure, patient)
    local pe = codes.icd_match("I26", event.code)
    return pv.alert {
      severity = "critical",
      grade = pe and 3 or nil,
      title = (pe and "Pulmonary embolism" or "Deep vein thrombosis")
        .. " on baricitinib",
      detail = describe(event, exposure, patient)
        .. (pe and " CTCAE v5 thromboembolic event: pulmonary embolism is "
          .. "the grade 3 example." or ""),
      action = "Discontinue baricitinib in a patient with suspected VTE, "
        .. "regardless of dose or indication (EU SmPC, MIMS-TH); "
        .. "thrombosis, including PE, is in the US boxed warning "
        .. "(USPI-HL22). Report as a serious adverse event.",
      key = "vte:" .. category(event.code),
      evidence = { event, exposure },
    }
  end,
}

-- baricitinib.arterial_thrombosis.  Grade: CTCAE v5 "Arterial
-- thromboembolism" starts at grade 3 ("Urgent intervention indicated";
-- domain §2), so I74 carries grade 3.  Stroke (I63) and MI (I21) are
-- graded under other CTCAE terms that need clinical facts, so no grade.
-- MI and stroke are MACE ("cardiovascular death, myocardial infarction,
-- and stroke", USPI-HL22; domain §1.8).
local ARTERIAL_TITLE = {
  I74 = "Arterial thrombosis", I63 = "Ischaemic stroke",
  I21 = "Myocardial infarction",
}
local arterial_thrombosis = exposure_rule {
  name = "baricitinib.arterial_thrombosis", kind = "event",
  set = "arterial_thrombosis",
  label = "Higher rate of MACE (cardiovascular death, myocardial "
    .. "infarction, and stroke) and arterial thrombosis with another "
    .. "JAK inhibitor (USPI-HL22 5.4, 5.5; domain §1.8)",
  severities = { "critical" },
  description = "arterial thrombosis, ischaemic stroke or MI while exposed "
    .. "to baricitinib",
  assess = function(event, exposure, patient)
    local cat = category(event.code)
    local mace = cat == "I63" or cat == "I21"
    return pv.alert {
      severity = "critical",
      grade = cat == "I74" and 3 or nil,
      title = (ARTERIAL_TITLE[cat] or "Arterial thrombosis")
        .. " on baricitinib",
      detail = describe(event, exposure, patient)
        .. (mace and " This is a MACE component (USPI-HL22)." or ""),
      action = "Evaluate promptly and review continuing baricitinib: "
        .. "arterial thrombosis is in the US boxed warning (USPI-HL22: "
        .. "'Thrombosis has occurred in patients treated with OLUMIANT'"
        .. (mace and "; MACE: 'cardiovascular death, myocardial infarction, "
          .. "and stroke'" or "") .. "). Report as a serious adverse event.",
      key = "arterial:" .. cat,
      evidence = { event, exposure },
    }
  end,
}

-- baricitinib.ddimer: a D-dimer above the laboratory's own upper
-- reference limit (ref_high, in the record's unit: FEU and DDU results
-- differ by about a factor of two, so no default is guessed).  Without a
-- ref_high there is no alert (DESIGN: "D-dimer above range (medium)").
-- A raised D-dimer is not a diagnosis, hence medium; no CTCAE term.
local ddimer = exposure_rule {
  name = "baricitinib.ddimer", kind = "lab", set = "ddimer",
  label = "None: D-dimer is not in the label; a clue for the thrombosis "
    .. "warning (USPI-HL22 5.5; domain §1.8)",
  severities = { "medium" },
  description = "D-dimer above the reference range while exposed to "
    .. "baricitinib",
  assess = function(obs, exposure, patient)
    if obs.value == nil or obs.ref_high == nil then return nil end
    if obs.status == "D" or obs.status == "W" or obs.status == "X" then
      return nil
    end
    if obs.value <= obs.ref_high then return nil end
    return pv.alert {
      severity = "medium",
      title = "D-dimer above range on baricitinib",
      detail = ("D-dimer %s %s on %s, above the reference range "
        .. "(upper limit %s %s; %s x). %s.")
        :format(obs.value_text or fmt(obs.value), obs.unit or "",
        pv.date(obs.at), fmt(obs.ref_high), obs.unit or "",
        obs.ref_high > 0 and ("%.1f"):format(obs.value / obs.ref_high)
          or "?", pack.On(exposure, obs.at, patient)),
      action = "Evaluate for venous thromboembolism (thrombosis is in the "
        .. "US boxed warning, USPI-HL22); if VTE is suspected, discontinue "
        .. "baricitinib regardless of dose or indication (EU SmPC, "
        .. "MIMS-TH). A raised D-dimer alone does not establish VTE.",
      key = "ddimer",
      evidence = { obs, exposure },
    }
  end,
}

return { vte, arterial_thrombosis, ddimer }
