---@meta pv
-- LuaLS annotations for the pvwatch rule API (core/rules_api.lua) and the
-- spec API of `pvwatch test` (core/cli_test.c). Nothing here runs: it only
-- tells the language server what `pv` holds. The guide is docs/rules.md.
--
-- In a plugin (plugins/*.lua) `pv` is the rule API; in a spec
-- (tests/rules/*.lua) `pv` holds only `pv.test`.

---A time: seconds since 1970-01-01 UTC (what every `at`, `start`, `onset`
---field holds), or a text in ISO 8601 (`"2026-01-31"`,
---`"2026-01-31T14:05:00Z"`; no zone = UTC) or HL7 TS (`"20260131140500"`).
---@alias pv.Time integer|string

---Codes: a code, the name of a set of scripts/codes.lua (`"neutrophils"`,
---`"cbc"`, `"vte"`), or a list of either. For events, codes are ICD-10-CM
---prefixes matched ignoring case and dots.
---@alias pv.Codes string|string[]

---@alias pv.Severity
---| "low"
---| "medium"
---| "high"
---| "critical"

---@alias pv.Fact pv.Obs|pv.Event|pv.Exposure

---A lab result: the fact of an `on.lab` rule, and each element of
---`patient:labs`, `:latest` and `:baseline`.
---@class pv.Obs
---@field kind? "lab" On the triggering fact only.
---@field id integer Row id.
---@field patient_id string
---@field code string LOINC code (or the feed's local code).
---@field code_system string Default `"LN"`.
---@field name? string The feed's test name.
---@field value? number Nil when the result is text only.
---@field value_text? string The value as the feed sent it (`"0.9"`, `"<0.5"`).
---@field comparator? "<"|"<="|">"|">=" For `<0.5` style results (`value` = 0.5); on the triggering fact only.
---@field unit? string As sent (`"10*9/L"`, `"x10E3/uL"`, `"g/L"`).
---@field ref_low? number The laboratory's lower limit, in `unit`.
---@field ref_high? number The laboratory's upper limit, in `unit`.
---@field flag? string `"L"`, `"H"`, `"HH"`, ...
---@field status string `"F"` final, `"C"` corrected, `"P"` preliminary.
---@field at integer When the sample was taken.
local Obs = {}

---The value converted to `unit` (count, mass, molar, enzyme and eGFR units
---of scripts/units.lua; mass<->molar by the LOINC code's analyte), rounded
---to 12 significant digits. Raises an error (the rule fails, an engine
---alert is raised) for an unknown unit, an impossible conversion or a
---result without a number; it never guesses.
---
---Example: `obs:value_in("cells/mm3")` for an ANC of 0.9 10*9/L is 900.
---@param unit string
---@return number
function Obs:value_in(unit) end

---A clinical event: the fact of an `on.event` rule and each element of
---`patient:events`.
---@class pv.Event
---@field kind? "event" On the triggering fact only.
---@field id integer Row id.
---@field patient_id string
---@field code string ICD-10-CM code as sent (`"I82.401"`).
---@field code_system string Default `"ICD10CM"`.
---@field term? string The feed's text.
---@field onset integer The onset time.
---@field at integer The same as `onset`.
---@field serious? boolean Nil when the feed did not say.
---@field outcome? string

---A medication exposure: the fact of an `on.exposure` rule and each element
---of `patient:exposures`.
---@class pv.Exposure
---@field kind? "exposure" On the triggering fact only.
---@field id integer Row id.
---@field patient_id string
---@field drug string The feed's drug text.
---@field drug_code? string
---@field code_system? string `"NDC"`, `"RXNORM"`, `"ATC"`, ...
---@field dose? number
---@field dose_unit? string
---@field route? string
---@field start integer The first dose.
---@field at? integer The same as `start`, on the triggering fact only.
---@field ["end"]? integer The last dose; nil = ongoing. Write `e["end"]`.
---@field start_source? string Where `start` came from: `"TQ1-7"`, `"RXE-1"`, `"ORC-7"`, `"RXG-3"`, `"RXA-3"`, `"RXD-3"`, `"MSH-7"` (the message time: no start given), `"csv"`.

---Options of `patient:labs` and `patient:events`.
---@class pv.HistoryOpts
---@field since? pv.Time At or after this time.
---@field ["until"]? pv.Time At or before this time (write `["until"]`).
---@field days? number The N days up to `until` (default: the triggering fact's time, or `now` in a scheduled rule); overrides `since`.
---@field limit? integer At most this many.

---The patient a rule is called for.
---@class pv.Patient
---@field id string The patient's id.
local Patient = {}

---The patient's lab results for `codes` (nil = every lab), newest first,
---each with `value_in`. Includes the triggering lab, and results taken
---after it unless `["until"]` says otherwise. Deleted (`D`) and wrong (`W`)
---results are left out.
---
---Example: `patient:labs("neutrophils", { days = 30, ["until"] = obs.at, limit = 3 })`
---@param codes? pv.Codes
---@param opts? pv.HistoryOpts
---@return pv.Obs[]
function Patient:labs(codes, opts) end

---The newest result for `codes` taken at or before `before` (inclusive;
---without `before`, the newest of all), or nil.
---
---Example: `patient:latest("egfr", exposure.start)`
---@param codes pv.Codes
---@param before? pv.Time
---@return pv.Obs|nil
function Patient:latest(codes, before) end

---The newest result for `codes` taken strictly before `before` (default:
---the triggering fact's time), or nil. Pass the course start for a
---pre-treatment baseline.
---
---Example: `patient:baseline("alt", patient:course_start("baricitinib", e))`
---@param codes pv.Codes
---@param before? pv.Time
---@return pv.Obs|nil
function Patient:baseline(codes, before) end

---The patient's events whose code starts with one of the ICD-10-CM
---prefixes or sets in `codes` (nil = every event), newest first.
---
---Example: `patient:events("vte", { ["until"] = ev.at - 1 })`
---@param codes? pv.Codes
---@param opts? pv.HistoryOpts
---@return pv.Event[]
function Patient:events(codes, opts) end

---The patient's exposures matching `drug` (scripts/codes.lua
---`drug_matches`: names, NDC, ATC, RxCUI, OMOP for baricitinib; a
---case-insensitive substring of the drug text otherwise; nil = all),
---oldest first.
---
---Example: `patient:exposures("baricitinib")`
---@param drug? string
---@return pv.Exposure[]
function Patient:exposures(drug) end

---True and the oldest matching exposure that covers `at` (from its start
---to the end of the UTC day of its end plus `washout_days` days; open-ended
---without an end), else false. Always pass `at`.
---
---Example: `local exposed, exposure = patient:exposed("baricitinib", obs.at)`
---@param drug string
---@param at? pv.Time Default: the triggering fact's time (`now` in a scheduled rule).
---@return boolean exposed
---@return pv.Exposure|nil exposure
function Patient:exposed(drug, at) end

---Of the exposures that cover `at`, the one in force (one still being taken
---wins over one in its washout, then the latest start), and whether `at` is
---before the end of its last day of dosing (`taking`); nil when none.
---
---Example: `local e, taking = patient:current("baricitinib", now)`
---@param drug string
---@param at? pv.Time
---@return pv.Exposure|nil exposure
---@return boolean|nil taking
function Patient:current(drug, at) end

---The start of the continuous course `exposure` belongs to (refills, dose
---changes and breaks shorter than the washout continue a course), and the
---exposure that began it. `course_start(drug, e) == e.start` means `e` is
---an initiation.
---
---Example: `local start = patient:course_start("baricitinib", exposure)`
---@param drug string
---@param exposure pv.Exposure
---@return integer start
---@return pv.Exposure first
function Patient:course_start(drug, exposure) end

---The patient's age in whole years at `at`, or nil when the birth date is
---unknown.
---@param at? pv.Time
---@return integer|nil
function Patient:age(at) end

---What makes a rule run.
---@class pv.Triggers
---@field lab? pv.Codes LOINC codes or sets; exact match on the result's code.
---@field event? pv.Codes ICD-10-CM prefixes or sets; case and dots ignored.
---@field exposure? string|string[] Drug names, matched as `patient:exposures` does.

---The table given to `pv.rule`.
---@class pv.RuleSpec
---@field name string Unique across all plugins, e.g. `"site.alc_halved"`.
---@field signal string The alerts' signal, e.g. `"cytopenia"`.
---@field description? string One line.
---@field label? string The label sentence the rule enforces, with its source (for `pvwatch rules` and docs/rules.md; changes nothing at run time).
---@field severities? pv.Severity[] The severities the rule can raise (listed by `pvwatch rules`; not enforced).
---@field on? pv.Triggers Lab, event and exposure triggers.
---@field every? string A schedule: a whole number and `s`, `m`, `h` or `d` (`"1d"`); then `when(patient, now)`.
---@field needs_exposure? boolean With `on.exposure`: `false` lets labs and events of patients without such an exposure reach `when` (default `true`: the exposure gate, docs/rules.md).
---@field when fun(fact: pv.Fact, patient: pv.Patient): pv.Alert|pv.Alert[]|false|nil Called as `when(fact, patient)` for `on` triggers and as `when(patient, now)` for `every` (annotate such a function with `---@param patient pv.Patient` and `---@param now integer`).

---A rule, as `pv.rule` returns it; a plugin file returns one or a list.
---@class pv.Rule
---@field name string
---@field signal string
---@field description? string

---The table given to `pv.alert`.
---@class pv.AlertSpec
---@field severity pv.Severity Required.
---@field title string Required: one line a person understands.
---@field grade? number CTCAE grade; stored as an integer (floor).
---@field detail? string Values, units and dates.
---@field action? string What to do, citing the label or CTCAE.
---@field key? string|number Dedup key within patient and rule; default `"default"`.
---@field evidence? pv.Fact[] Default: the triggering fact.

---An alert, as `pv.alert` returns it; `when` returns one, a list, or nil.
---@class pv.Alert

---The rule API (plugins) and, in specs, `pv.test`.
---@class pv
---@field days integer Seconds in a day: 86400.
---@field label pv.LabelConfig The label the site follows (config `label`).
---@field exposure pv.ExposureConfig Exposure settings (config `exposure`).
---@field log pv.Log Logging to pvwatch's log.
---@field state pv.State Per-rule key/value store in the database.
---@field codes table<string, string[]> Named code sets of scripts/codes.lua: `pv.codes.neutrophils`, `pv.codes.vte`; nil for an unknown name.
pv = {}

---@class pv.LabelConfig
---@field indication "ra"|"aa"|"covid19"
---@field region "us"|"eu"

---@class pv.ExposureConfig
---@field washout_days number Days an exposure still counts after its last day (default 28).
---@field rituximab_days integer Days after its last dose rituximab still counts for `baricitinib.combination` (config `exposure.rituximab_days`, default 183).

---Declares a rule. Call it at the top level of a plugin file; it raises an
---error for a missing name, signal or `when`, an unknown trigger or a bad
---`every`.
---
---Example:
---```lua
---return pv.rule {
---  name = "site.anc_low", signal = "cytopenia",
---  on = { lab = "neutrophils" },
---  when = function(obs, patient) ... end,
---}
---```
---@param spec pv.RuleSpec
---@return pv.Rule
function pv.rule(spec) end

---Builds an alert for `when` to return. Raises an error for a missing or
---mistyped severity or title.
---
---Example: `return pv.alert { severity = "high", grade = 3, title = "...", key = "neutropenia" }`
---@param spec pv.AlertSpec
---@return pv.Alert
function pv.alert(spec) end

---Parses an ISO 8601 or HL7 TS text. Usable at load time.
---
---Example: `local SWITCH = assert(pv.time("2026-01-15"))`
---@param text string
---@return integer|nil time
---@return string|nil err `"not a valid time: ..."`
function pv.time(text) end

---A time as ISO 8601 UTC text: `"2026-01-31T14:05:00Z"`. Raises for a
---text that is not a time.
---@param t pv.Time
---@return string
function pv.iso(t) end

---The UTC date of a time: `"2026-01-31"`.
---@param t pv.Time
---@return string
function pv.date(t) end

---The current time: the wall clock in the engine (also during replay), the
---fixed test clock in `pvwatch test`. Not the fact's time.
---@return integer
function pv.now() end

---@class pv.Log
local Log = {}

---Logs the arguments (through `tostring`, joined by spaces) at info level
---as `rule NAME: ...`. `print` is the same.
---@param ... any
function Log.info(...) end

---Logs the arguments at warning level (shown by `pvwatch test`).
---@param ... any
function Log.warn(...) end

---@class pv.State
local State = {}

---The value stored under `key` for this rule, as text, or nil. Only while a
---rule runs. Keys are per rule, not per patient: include `patient.id`.
---@param key string
---@return string|nil
function State.get(key) end

---Stores `value` (as text) under `key` for this rule; nil deletes. Only
---while a rule runs; written in the fact's transaction.
---@param key string
---@param value string|number|boolean|nil
function State.set(key, value) end

-- The spec API of `pvwatch test` (core/cli_test.c).

---A lab result for `t:lab`.
---@class pv.TestLab
---@field patient_id string
---@field code string
---@field value number|string A number, a numeric text, or a text kept as a text-only result.
---@field unit? string
---@field at pv.Time
---@field code_system? string Default `"LN"`.
---@field name? string
---@field ref_low? number
---@field ref_high? number
---@field flag? string
---@field status? string Default `"F"`.

---An exposure for `t:exposure`.
---@class pv.TestExposure
---@field patient_id string
---@field drug string
---@field start pv.Time
---@field ["end"]? pv.Time
---@field dose? number
---@field dose_unit? string Default `"mg"` when `dose` is given.
---@field drug_code? string
---@field code_system? string
---@field route? string

---An event for `t:event`.
---@class pv.TestEvent
---@field patient_id string
---@field code string
---@field onset? pv.Time Required (or `at`).
---@field at? pv.Time Accepted for `onset`.
---@field code_system? string Default `"ICD10CM"`.
---@field term? string
---@field serious? boolean
---@field outcome? string

---An alert as `t:alerts()` returns it.
---@class pv.TestAlert
---@field id integer
---@field patient_id string
---@field rule string
---@field signal string
---@field severity pv.Severity
---@field grade? integer
---@field title string
---@field detail? string
---@field action? string
---@field status "open"|"acknowledged"|"closed"
---@field occurrences integer
---@field key string
---@field evidence string The evidence list as JSON text.

---What `t:expect_alert` and `t:expect_no_alert` compare: any field of
---`pv.TestAlert` (compared with `==`), `FIELD_has` (substring) and `count`.
---@class pv.Expectation
---@field id? integer
---@field patient_id? string
---@field rule? string
---@field signal? string
---@field severity? pv.Severity
---@field grade? integer
---@field title? string
---@field detail? string
---@field action? string
---@field status? "open"|"acknowledged"|"closed"
---@field occurrences? integer
---@field key? string
---@field evidence? string
---@field title_has? string
---@field detail_has? string
---@field action_has? string
---@field evidence_has? string
---@field key_has? string
---@field count? integer Exactly this many alerts match (`t:expect_alert` only).

---One test case: a fresh in-memory database with the configured plugins
---and the clock at 2026-06-01T00:00:00Z.
---@class pv.TestCase
local TestCase = {}

---Stores a lab result and runs the rules on it, as a feed would.
---@param lab pv.TestLab
---@return integer id
function TestCase:lab(lab) end

---Stores an exposure and runs the rules on it.
---@param exposure pv.TestExposure
---@return integer id
function TestCase:exposure(exposure) end

---Stores an event and runs the rules on it.
---@param event pv.TestEvent
---@return integer id
function TestCase:event(event) end

---Sets the clock (`pv.now()`, alert timestamps).
---@param time string
function TestCase:clock(time) end

---Sets the clock to `time` (if given) and runs every scheduled rule once,
---for every patient with an exposure.
---@param time? string
function TestCase:tick(time) end

---Every alert of the case, in the order they were opened.
---@return pv.TestAlert[]
function TestCase:alerts() end

---Passes when an alert matches every field (exactly `count` alerts with
---`count`); a failure is printed with FILE:LINE and the case goes on.
---@param expectation pv.Expectation
---@return boolean
function TestCase:expect_alert(expectation) end

---Passes when no alert matches every field (`{}`: no alert at all).
---@param expectation pv.Expectation
---@return boolean
function TestCase:expect_no_alert(expectation) end

---A plain assertion that fails the case (not the file).
---@param condition any
---@param message? string
---@return boolean
function TestCase:expect(condition, message) end

---Starts a test case (in a spec file; finishes the previous one).
---
---Example: `local t = pv.test "neutropenia: grade 3"`
---@param name string
---@return pv.TestCase
function pv.test(name) end
