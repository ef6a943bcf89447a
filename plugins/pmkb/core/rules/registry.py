"""Every rule pmkb knows: a stable code, a kebab-case name, a level and an explanation.

Codes are grouped by family (PM0xx file, PM1xx fields, PM2xx sections, PM3xx
timeline, PM4xx action items, PM5xx knowledge base, PM6xx blame language, PM9xx
suppressions) and never reused. Either the code or the name works wherever a
rule is named: configuration, suppression comments, `pmkb rules NAME`.
"""

from __future__ import annotations

from dataclasses import dataclass

# A rule whose level is "status" takes it from the postmortem's status
# (config `status_levels`: draft -> warning, in-review/published -> error).
BY_STATUS = "status"


@dataclass(frozen=True)
class Rule:
    code: str
    name: str
    level: str  # error | warning | notice | status
    summary: str
    explanation: str = ""
    bad: str = ""
    good: str = ""

    @property
    def family(self) -> str:
        return FAMILIES[self.code[:3]]


FAMILIES = {
    "PM0": "file",
    "PM1": "front matter",
    "PM2": "sections",
    "PM3": "timeline",
    "PM4": "action items",
    "PM5": "knowledge base",
    "PM6": "blame language",
    "PM7": "editions",
    "PM9": "suppressions",
}

_RULES = [
    # ---- file ---------------------------------------------------------------
    Rule("PM001", "missing-front-matter", "error", "The file does not start with YAML front matter (---).",
         "Every postmortem starts with a `---` line, its YAML front matter, and a closing `---`.",
         "# Checkout outage\n...", "---\nid: INC-2024-001\n...\n---"),
    Rule("PM002", "unterminated-front-matter", "error", "The front matter has no closing `---` line.",
         "Without the closing line the whole file would be read as YAML.", "---\nid: INC-2024-001\n## Summary",
         "---\nid: INC-2024-001\n---\n## Summary"),
    Rule("PM003", "invalid-yaml", "error", "The front matter is not valid YAML.",
         "pmkb reports the line and column where the YAML parser stopped.", "title: [unclosed", "title: Closed"),
    Rule("PM004", "front-matter-not-mapping", "error", "The front matter is a list or a single value, not key: value pairs.",
         "", "---\n- id\n- title\n---", "---\nid: INC-2024-001\n---"),
    Rule("PM005", "duplicate-key", "error", "A key appears twice in the same mapping; YAML would silently keep the last.",
         "", "severity: SEV2\nseverity: SEV1", "severity: SEV1"),
    Rule("PM006", "unsafe-yaml", "error", "Language-specific YAML tags or alias expansion bombs are refused.",
         "Tags such as `!!python/object` could run code; deeply nested aliases could exhaust memory. "
         "Neither belongs in a postmortem.", "x: !!python/object/apply:os.system [id]", "x: plain text"),
    Rule("PM007", "unreadable-file", "error", "The file is not UTF-8 text (binary or another encoding).",
         "", "", ""),
    Rule("PM008", "file-too-large", "error", "The file is larger than `max_file_size` and was not read.",
         "", "", ""),
    Rule("PM009", "empty-file", "error", "The file is empty.", "", "", ""),
    # ---- front matter -------------------------------------------------------
    Rule("PM101", "missing-field", BY_STATUS, "A required front-matter field is missing.",
         "`id`, `title`, `date` and `severity` are always required; which times, roles and action items "
         "are required depends on the severity (config `required`). Drafts get warnings, postmortems in "
         "review or published get errors.", "severity: SEV1\n# no times.detected", "times:\n  detected: \"14:06\""),
    Rule("PM102", "invalid-id", "error", "The `id` does not match `PREFIX-...` (upper-case prefix, dash, letters/digits).",
         "", "id: inc 2024/1", "id: INC-2024-001"),
    Rule("PM103", "invalid-date", "error", "A date is not a real `YYYY-MM-DD` date.", "", "date: 2024-02-30", "date: 2024-02-29"),
    Rule("PM104", "invalid-severity", "error", "The severity is not one of the configured severities or aliases.",
         "", "severity: critical", "severity: SEV1"),
    Rule("PM105", "invalid-value", "error", "A field has a value outside its allowed set (status, detection, phase, kind...).",
         "", "status: done", "status: published"),
    Rule("PM106", "invalid-type", "error", "A field has the wrong type (text where a list is expected, and so on).",
         "", "impact:\n  users_affected: many", "impact:\n  users_affected: 1200"),
    Rule("PM107", "unknown-key", "warning", "An unknown front-matter key: often a typo of a known one.",
         "", "severty: SEV2", "severity: SEV2"),
    Rule("PM108", "invalid-time", "error", "A time is neither `HH:MM` nor a full ISO-8601 timestamp.",
         "`HH:MM` means that time on `date` in the configured time zone. Quote it (\"14:02\").",
         "started: 2pm", "started: \"14:00\""),
    Rule("PM109", "times-out-of-order", "error",
         "Times go backwards: started <= detected <= acknowledged <= mitigated <= resolved.",
         "Incidents that cross midnight need full timestamps for the times after midnight.",
         "started: \"23:50\"\nresolved: \"00:20\"", "started: \"23:50\"\nresolved: 2024-03-15T00:20:00Z"),
    Rule("PM110", "invalid-duration", "error", "The `duration` is not like `25m`, `2h 34m` or `1h`.", "",
         "duration: about an hour", "duration: 1h 5m"),
    Rule("PM111", "duration-mismatch", "error", "The `duration` disagrees with resolved - started by more than a minute.",
         "", "started: \"14:00\"\nresolved: \"15:00\"\nduration: 2h", "duration: 1h"),
    Rule("PM112", "invalid-url", "error", "A link field (such as `ticket`) is not an http(s) URL.", "",
         "ticket: javascript:alert(1)", "ticket: https://tracker.example.com/OPS-12"),
    Rule("PM113", "multiline-title", "error", "The title must be one line.", "", "title: |\n  two\n  lines", "title: One line"),
    # ---- sections -------------------------------------------------------------
    Rule("PM201", "missing-section", BY_STATUS, "A section required by the blameless template is missing.",
         "SEV1/SEV2 need Summary, Impact, Root Cause, Contributing Factors, What Went Well, What Went Poorly "
         "and Lessons Learned; SEV3/SEV4 need Summary, Impact and Root Cause (config `required`).",
         "## Summary\n...", "## Summary\n...\n## Root Cause\n..."),
    Rule("PM202", "empty-section", BY_STATUS, "A required section has no content (comments do not count).",
         "", "## Root Cause\n<!-- TODO -->", "## Root Cause\nThe pool had no upper bound..."),
    Rule("PM203", "duplicate-section", "warning", "The same section appears twice.", "", "", ""),
    # ---- timeline -----------------------------------------------------------
    Rule("PM301", "timeline-out-of-order", "error", "Timeline entries are not in chronological order.",
         "`pmkb fix` sorts them.", "- time: \"14:10\"\n- time: \"14:02\"", "- time: \"14:02\"\n- time: \"14:10\""),
    Rule("PM302", "invalid-timeline-entry", "error", "A timeline entry lacks `time` or `event`.", "",
         "- event: Rolled back", "- time: \"14:20\"\n  event: Rolled back"),
    # ---- action items -------------------------------------------------------
    Rule("PM401", "action-item-missing-owner", "error", "An action item has no owner.",
         "An item without an owner does not get done.", "- action: Add alert", "- action: Add alert\n  owner: Wei Zhang"),
    Rule("PM402", "action-item-missing-action", "error", "An action item has no `action` text.", "", "", ""),
    Rule("PM403", "duplicate-action-id", "error", "Two action items share an `id` (across the knowledge base).", "", "", ""),
    Rule("PM404", "missing-action-items", BY_STATUS, "The severity requires at least one action item.", "", "", ""),
    Rule("PM405", "missing-prevent-action", BY_STATUS, "A SEV1/SEV2 postmortem has no action item of kind `prevent`.",
         "Mitigation and detection items help next time; only a `prevent` item stops a recurrence.",
         "kind: detect", "kind: prevent"),
    Rule("PM406", "action-item-incomplete", "error", "A published postmortem has an action item without an owner or a due date.",
         "", "- action: Add alert\n  owner: Wei Zhang", "- action: Add alert\n  owner: Wei Zhang\n  due: 2025-01-31"),
    Rule("PM407", "action-item-overdue", "notice", "An action item is past its due date and not done.",
         "Reported as a notice by default so a --strict build does not fail only because time passed; "
         "the `overdue_policy` option can raise it.", "", ""),
    # ---- knowledge base -----------------------------------------------------
    Rule("PM501", "duplicate-id", "error", "Two postmortems share an `id`.", "", "", ""),
    Rule("PM502", "unknown-related", "error", "A `related` ID names no postmortem in the knowledge base.", "",
         "related: [INC-2023-999]", "related: [INC-2024-001]"),
    Rule("PM503", "self-related", "warning", "A postmortem lists itself in `related`.", "", "", ""),
    # ---- blame language -----------------------------------------------------
    Rule("PM601", "blame-counterfactual", "status", "Hindsight counterfactuals (\"should have\", \"could have\", \"if only\").",
         "Counterfactuals judge past decisions with knowledge nobody had at the time. Describe what the "
         "system lacked or what made the action reasonable then.",
         "The on-call should have rolled back sooner.",
         "The dashboard showed no error spike, so a rollback did not look necessary."),
    Rule("PM602", "blame-human-error", "status", "\"Human error\" (or operator/user/pilot error, \"a mistake by\") as a cause.",
         "Human error is where an investigation starts, not where it ends: ask what made the action "
         "possible and likely.", "The outage was caused by human error.",
         "The deploy tool accepted a config that referenced a deleted pool."),
    Rule("PM603", "blame-judgement", "status", "Words that judge people (careless, sloppy, negligent, panicked...).",
         "Judgements say nothing about the system and teach people to hide details.",
         "A careless engineer pushed the change.", "The change was pushed without a review step."),
    Rule("PM604", "blame-fault", "status", "Blame or fault aimed at people or teams (\"to blame\", \"X's fault\", \"the culprit\").",
         "", "The database team was to blame.", "The schema migration locked the orders table."),
    Rule("PM605", "blame-person-subject", "status",
         "A person, role or team as the subject of a failure (forgot, ignored, failed to, overlooked).",
         "", "The on-call ignored the page.", "The page arrived during a flood of 40 low-priority alerts."),
    Rule("PM606", "blame-named-person", "status",
         "A person's name or @handle in Root Cause, Contributing Factors or Five Whys.",
         "Root-cause analysis is about the system; names there read as blame whatever the intent.",
         "Priya pushed the config without review.", "The config was pushed through a path without review."),
    # ---- editions ---------------------------------------------------------------
    Rule("PM701", "public-names-person", "warning",
         "A public postmortem names a person outside a marked internal passage.",
         "The public edition replaces known names, but a name the knowledge base does not know would "
         "be published. Refer to roles, or wrap the passage in <!-- pmkb:internal --> ... <!-- pmkb:end -->.",
         "Thanks to Priya Raman for the fix.", "Thanks to the database on-call for the fix."),
    Rule("PM702", "public-names-customer", "warning",
         "A public postmortem names a customer (config `customers`) outside a marked internal passage.",
         "", "Acme Corp saw errors.", "Two enterprise customers saw errors."),
    # ---- suppressions -------------------------------------------------------
    Rule("PM901", "unused-suppression", "warning", "A pmkb-disable comment silences nothing.", "", "", ""),
    Rule("PM902", "unknown-rule", "warning", "A suppression comment names a rule that does not exist.", "", "", ""),
]


class _Registry:
    def __init__(self, rules: list[Rule]):
        self.rules = rules
        self._by = {}
        for r in rules:
            assert r.code not in self._by and r.name not in self._by, r
            self._by[r.code] = r
            self._by[r.name] = r
            self._by[r.code.lower()] = r

    def get(self, key: str) -> Rule | None:
        return self._by.get(key) or self._by.get(key.strip().lower())

    def __getitem__(self, key: str) -> Rule:
        rule = self.get(key)
        if rule is None:
            raise KeyError(key)
        return rule

    def __iter__(self):
        return iter(self.rules)


REGISTRY = _Registry(_RULES)
