"""Blame language: find it, say why it reads as blame, and suggest a blameless phrasing.

Careful patterns rather than a part-of-speech tagger: the hard cases are about
*who* is the subject of a failure ("the engineer forgot" vs "the health check
ignored"), and a small subject finder with a lexicon of people, roles and teams
gets those right without a model download, at a few microseconds a sentence.

How it runs: prose is masked (code, URLs, comments, quotes). The set of words in
the text says which anchor words to look for (`WAKE`), and each anchor is kept
only if what follows fits its pattern: most prose has "error" or "failed", but
seldom "error by" or "failed to". Only the sentences around the anchors kept are
cut out and matched against the patterns below. Each pattern has a term id, so
teams can remove, re-level or extend terms in mkdocs.yml (`blame:`).
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable

from .findings import Findings
from .model import Postmortem, Span
from .textmask import mask_markdown

NAMED_SECTIONS = ("Root Cause", "Contributing Factors", "Five Whys")

# ---------------------------------------------------------------- lexicon --
PERSON_WORDS = {
    "engineer", "engineers", "developer", "developers", "dev", "devs", "sre", "sres", "on-call", "oncall",
    "on-caller", "on-callers", "responder", "responders", "admin", "admins", "administrator", "administrators",
    "sysadmin", "sysadmins", "dba", "dbas", "intern", "interns", "contractor", "contractors", "employee",
    "employees", "staff", "reviewer", "reviewers", "approver", "approvers", "commander", "commanders", "ic",
    "analyst", "analysts", "tester", "testers", "person", "people", "someone", "somebody", "anyone", "anybody",
    "everyone", "everybody", "whoever", "human", "humans", "individual", "individuals", "colleague",
    "colleagues", "teammate", "teammates", "team", "teams", "squad", "squads", "department", "leadership",
    "management", "consultant", "consultants", "we", "i", "he", "she", "you", "they", "newcomer", "newcomers",
    "oncaller", "operators", "operator", "manager", "managers", "lead", "leads", "owner", "owners",
    "member", "members", "architect", "architects", "programmer", "programmers", "coder", "coders", "techs",
    "technician", "technicians", "scribe", "supervisor", "director", "vp", "cto", "ops",
    "support", "marketing", "sales", "finance", "legal", "noc", "soc", "helpdesk", "devops", "sysops",
    "requester", "requesters", "maintainer", "maintainers", "dev-team", "on-calls",
}
# Possessors whose "fault" is blame too, though they are rarely the subject of a failure verb
# ("users failed to log in" describes impact, not blame).
FAULT_OWNERS = {"vendor", "vendors", "supplier", "suppliers", "customer", "customers", "user", "users",
                "partner", "partners", "provider", "client", "clients"}
# Words that name people only with a person-like word before them ("the release manager",
# not "the package manager"; "the operator" but not "the Kubernetes operator").
AMBIGUOUS = {"operator", "operators", "manager", "managers", "lead", "leads", "owner", "owners", "member",
             "members", "ops", "human", "humans"}
TECH_MODIFIERS = {
    "package", "secrets", "secret", "connection", "window", "cert", "certificate", "resource", "cluster", "session",
    "task", "state", "config", "configuration", "node", "lock", "memory", "transaction", "traffic", "device",
    "key", "password", "kubernetes", "k8s", "postgres", "database", "kafka", "redis", "strimzi", "prometheus",
    "mysql", "helm", "crd", "dependency", "build", "process", "job", "workflow", "deployment", "release-",
    "partition", "replication", "consensus", "raft", "schema", "queue", "load", "power", "storage", "disk",
}
PERSON_QUALIFIERS = {
    "the", "a", "an", "our", "their", "his", "her", "my", "your", "that", "this", "one", "another", "release",
    "incident", "engineering", "product", "project", "program", "team", "tech", "on-call", "oncall", "service",
    "shift", "duty", "night", "weekend", "primary", "secondary", "change", "human", "delivery", "account",
    "database", "network", "platform", "infrastructure", "security", "support", "site", "staff", "some",
    "every", "each", "any", "junior", "senior", "new",
}
SKIP_BACK = {
    "had", "has", "have", "was", "were", "is", "are", "been", "be", "also", "then", "simply", "just", "again",
    "repeatedly", "completely", "initially", "still", "never", "apparently", "subsequently", "later", "first",
    "clearly", "quickly", "twice", "already", "accidentally", "unfortunately", "ultimately", "not", "did",
    "didn't", "didn’t", "does", "do", "on", "call", "duty", "who", "itself", "themselves", "himself",
    "herself", "entirely", "partly", "largely", "mostly", "probably", "likely", "all", "both", "eventually",
    "consistently", "often", "sometimes", "always", "once", "obviously", "seemingly", "allegedly", "shift",
}


def _trie_regex(words: list[str]) -> str:
    """'blam', 'blame', 'blunder' -> 'bl(?:am(?:e)?|under)': Python's re tries alternatives one by
    one, so factoring the prefixes makes the trigger scan several times faster. Longest match first."""
    trie: dict = {}
    for w in words:
        node = trie
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict) -> str:
        ends = "" in node
        branches = [re.escape(ch) + emit(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if ends else body

    return "(?:" + emit(trie) + ")"


CLAUSE_WORDS = ("and", "but", "because", "since", "so", "while", "when", "although", "though", "after", "before",
                "until", "as", "then", "which", "who", "that", "whereas", "where", "if", "unless", "once", "or")
# Only one of the words can end at a word boundary, so their order does not matter: factored,
# behind a look at the first letter, the regex costs half as much (it runs for every subject).
CLAUSE_BREAK = re.compile(
    rf"[,;:()]|\b(?=[{''.join(sorted({w[0] for w in CLAUSE_WORDS}))}]){_trie_regex(sorted(CLAUSE_WORDS))}\b", re.I)
WORD = re.compile(r"@?[\w][\w'’-]*")
# A sentence ends after [.!?] and closing quotes, at a blank line, or before a list item. The
# leading [.!?\n] lets `re` skip to candidate characters instead of trying every position.
SENTENCE_END = re.compile(r"[.!?\n](?:(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[*_`@]?[A-Z0-9])|(?<=\n)[ \t]*\n"
                          r"|(?<=\n)(?=[ \t]*(?:[-*+]|\d+[.)])\s))")

# ---------------------------------------------------------------- patterns --


@dataclass(frozen=True)
class Pattern:
    rule: str
    term: str
    regex: re.Pattern
    message: str
    suggestion: str
    condition: Callable | None = None  # (sentence context, match) -> bool
    priority: int = 0  # higher wins when two findings overlap
    stems: tuple[str, ...] = ()  # word starts that must occur in a sentence for the pattern to run
    # (anchor words, probe) pairs: every match holds an anchor that its probe accepts (see WAKE);
    # None when unknown, and then the stems alone decide where it runs
    wake: tuple[tuple[tuple[str, ...], re.Pattern | None], ...] | None = None
    anchored: bool = False  # every match starts at an anchor of `wake`, so it is tried only there


@dataclass(slots=True)
class Context:
    text: str  # the masked sentence
    start: int  # its offset in the scanned text
    people: "PeopleIndex | None"


def _rx(pattern: str) -> re.Pattern:
    return re.compile(pattern, re.I)


# ---- subject finding ----------------------------------------------------------
def _tokens(text: str) -> list[str]:
    return WORD.findall(text)


def _is_person_token(tokens: list[str], i: int, people) -> bool:
    tok = tokens[i]
    low = tok.lower().rstrip("'’")
    if low.endswith(("'s", "’s")):
        return False
    if tok.startswith("@") and len(tok) > 1:
        return True
    if people is not None and people.is_name_token(tok):
        return True
    if tok in GIVEN_NAMES and i == len(tokens) - 1 and tok not in NOT_NAMES:
        return True
    if low in PERSON_WORDS:
        if low in AMBIGUOUS:
            prev_tok = tokens[i - 1] if i > 0 else ""
            prev = prev_tok.lower()
            if prev in TECH_MODIFIERS or prev.endswith(("-operator", "-manager")):
                return False
            # "the Kubernetes operator": a product name before it makes it software
            if prev_tok[:1].isupper() and not prev_tok.isupper() and prev not in PERSON_QUALIFIERS and i > 1:
                return False
            return True
        return True
    return False


_LY_NOUNS = {"supply", "assembly", "family", "reply", "anomaly", "poly", "rally", "ally", "italy", "july"}


def _skippable(tok: str) -> bool:
    low = tok.lower()
    return low in SKIP_BACK or (low.endswith("ly") and low not in _LY_NOUNS and len(low) > 4)


def _head_is_person(segment: str, people) -> bool | None:
    """True/False when the segment ends in a noun phrase; None when it is empty (elided)."""
    toks = _tokens(segment)
    while toks and _skippable(toks[-1]):
        toks.pop()
    if not toks:
        return None
    if _is_person_token(toks, len(toks) - 1, people):
        return True
    # "the engineer watching the dashboards panicked": a person modified by a participle phrase
    for i, _tok in enumerate(toks[:-1]):
        if _is_person_token(toks, i, people):
            nxt = toks[i + 1].lower()
            if nxt.endswith("ing") or nxt in ("assigned", "responsible", "tasked", "paged", "handling"):
                return True
            break
    return False


def subject_is_person(ctx: Context, pos: int) -> bool:
    """Is the subject of the verb at `pos` (offset in the sentence) a person, role or team?"""
    before = ctx.text[:pos]
    # Drop a leading "Why ...?" question (Five Whys) so the answer's subject is found.
    q = before.rfind("?")
    if q >= 0:
        before = before[q + 1:]
    if _nobody_in(before, ctx.people):
        return False
    parts, at = [], 0  # the clauses, as CLAUSE_BREAK.split would give them, from a single pass
    for m in CLAUSE_BREAK.finditer(before):
        parts.append(before[at:m.start()])
        at = m.end()
    parts.append(before[at:])
    if at and m.group(0).lower() == "who" and parts[-1].strip():
        return True  # "the DBA who ran the migration was ...": `who` refers to a person
    verdict = _head_is_person(parts[-1], ctx.people) if parts else None
    if verdict is not None:
        return verdict
    for part in parts:  # elided subject: the first clause that has one
        v = _head_is_person(part, ctx.people)
        if v is not None:
            return v
    return False


def _nobody_in(text: str, people) -> bool:
    """No word of `text` can be a person, nor "who": what most subjects show ("the targeting
    rules failed to"), told by a set test in C instead of a look at every word. A person
    word's (lower-cased) longest ASCII run is a whole run of the lower-cased text too."""
    if "@" in text:
        return False
    runs = _words(text.lower())
    if not _PERSON_RUNS.isdisjoint(runs):
        return False
    names = people.lower_runs() if people is not None else frozenset()
    return names is not None and names.isdisjoint(runs)


def mentions_person(text: str, people) -> bool:
    toks = _tokens(text)
    return any(_is_person_token(toks, i, people) for i in range(len(toks)))


def _person_subject(ctx: Context, m: re.Match) -> bool:
    return subject_is_person(ctx, m.start())


def _not_negated_blame(ctx: Context, m: re.Match) -> bool:
    before = ctx.text[max(0, m.start() - 40):m.start()].lower()
    return not re.search(r"\b(?:no one|nobody|no single \w+|not|isn['’]t|wasn['’]t|aren['’]t|none|neither)\b[^.]*$", before)


def _possessor_is_person(ctx: Context, m: re.Match) -> bool:
    owner = m.group("owner")
    low = owner.lower()
    if low in ("nobody", "no one", "noone", "anybody", "anyone"):
        return bool(re.match(r"\s*(?:but|except)\b", ctx.text[m.end():]))
    if low in ("my", "our", "their", "his", "her", "your") or low in FAULT_OWNERS:
        return True
    toks = _tokens(ctx.text[:m.start("owner")]) + [owner]
    return _is_person_token(toks, len(toks) - 1, ctx.people)


def _fault_of_person(ctx: Context, m: re.Match) -> bool:
    return mentions_person(m.group("whom"), ctx.people)


def _clause_has_person(ctx: Context, m: re.Match) -> bool:
    return mentions_person(ctx.text, ctx.people)


_DETERMINERS = {"a", "an", "the", "its", "their", "his", "her", "our", "your", "my", "no", "some", "any", "more",
                "fewer", "less", "enough", "one", "two", "several", "many", "every", "each", "this", "that",
                "these", "those", "access", "permission", "permissions", "jitter", "retries", "timeouts", "alerts"}
_CAUSAL = re.compile(r"\s*(?:\w+ly\s+)?(?:caused|triggered|contributed|led|explained|produced|introduced|happened|"
                     r"occurred|originated|played|been\s+(?:the\s+)?(?:cause|trigger|source|reason|related|involved))\b")


def _counterfactual(ctx: Context, m: re.Match) -> bool:
    modal = m.group("modal").lower()
    after = ctx.text[m.end("have"):].lower()
    nxt = re.match(r"\s*([\w'’-]+)", after)
    if m.group("have").lower() == "have" and nxt and nxt.group(1) in _DETERMINERS:
        return False  # "every client should have jitter": a requirement, not hindsight
    if modal.startswith("could") and _CAUSAL.match(after):
        before = ctx.text[:m.start()].lower()
        # "what could have caused", "whether a deploy could have triggered": weighing causes
        if re.search(r"\b(?:what|whether|which|how|if|why|anything|something|nothing)\b[^,;.]*$", before):
            return False
    return True


def _panicked(ctx: Context, m: re.Match) -> bool:
    return subject_is_person(ctx, m.start())


_TECH_AFTER_LAZY = (r"(?![\s-]+(?:[\w-]+\s+)?(?:load|loads|loading|loaded|loader|eval|evaluation|evaluated|init|initiali[sz]ation|"
                    r"initiali[sz]ed|deletion|expiration|expiry|fetch|fetching|import|imports|instantiation|"
                    r"allocation|binding|sequence|connect|connection|connections|value|values|property|iterator|"
                    r"mode|mount|propagation|replication|sync|migration|tree)\b)")

CF_MSG = "hindsight counterfactual: it judges a past decision with knowledge nobody had at the time"
CF_SUG = ("describe what the system lacked or what made the action reasonable then, e.g. "
          "'nothing in the deploy pipeline checked the pool size' instead of 'X should have checked it'")
HE_MSG = "'human error' names a person as the cause and ends the analysis where it should start"
HE_SUG = ("name the condition that made the action possible and likely, e.g. "
          "'the CLI accepted a production target without confirmation'")
JU_MSG = "judges a person instead of describing the system; it teaches people to hide details"
JU_SUG = ("describe the action and its context without judging it, e.g. "
          "'the change went out without a second review because the tool did not require one'")
FA_MSG = "assigns blame or fault to people or teams"
FA_SUG = ("describe the mechanism instead, e.g. 'the schema migration locked the orders table for 14 minutes'")
PS_MSG = "makes a person, role or team the subject of a failure"
PS_SUG = ("make the system the subject: say what it lacked, e.g. 'the runbook had no step to drain the node' "
          "or 'the page arrived among 40 other alerts'")

PATTERNS: list[Pattern] = [
    # ---- counterfactuals
    Pattern("blame-counterfactual", "should have",
            _rx(r"\b(?P<modal>should|could|would|ought\s+to)(?:\s+not|n['’]t)?(?:\s+(?:\w+ly|never|not|all|both|just))?\s+(?P<have>have)\b(?!\s+to\b)"),
            CF_MSG, CF_SUG, _counterfactual),
    Pattern("blame-counterfactual", "should've", _rx(r"\b(?P<modal>should|could|would|ought\s+to)(?:n['’]t)?(?P<have>['’]ve)\b"),
            CF_MSG, CF_SUG, _counterfactual),
    Pattern("blame-counterfactual", "if only", _rx(r"\bif\s+only\b"), CF_MSG, CF_SUG),
    Pattern("blame-counterfactual", "had ... would",
            re.compile(r"(?:^|(?<=[\s(\"']))(?:[Hh]ad)\s+(?:we|they|he|she|I|you|anyone|someone|somebody|the\s+[\w-]+(?:\s+[\w-]+)?|[A-Z][\w-]+)\s+[^.!?;]{2,160}?\bwould\b"),
            CF_MSG, CF_SUG, priority=-1),
    # ---- human error
    Pattern("blame-human-error", "human error",
            _rx(r"\b(?:(?:human|operator|pilot|personnel|staff|engineer|engineering|admin|administrator|manual|"
                r"procedural|people)[\s-]+(?:errors?|mistakes?|slip-?ups?|blunders?|failures?)|user[\s-]+(?:error|mistake))\b"
                r"(?!\s+(?:rate|rates|count|counts|page|pages|message|messages|budget|code|codes|response|responses|"
                r"log|logs|metric|metrics|ratio|spike|handling|handler|field|type|class|path)\b)"),
            HE_MSG, HE_SUG, priority=1),
    Pattern("blame-human-error", "mistake by",
            _rx(r"\b(?:mistakes?|errors?|slip-?ups?|blunders?)\s+(?:made\s+|committed\s+)?(?:by|of|on\s+the\s+part\s+of)\s+"
                r"(?:the\s+|an?\s+|our\s+)?(?!(?:the\s+)?(?:system|pipeline|config|tool|script|service|code|deploy)\b)[\w@-]+"),
            HE_MSG, HE_SUG, _clause_has_person, priority=1),
    Pattern("blame-human-error", "caused by a mistake",
            _rx(r"\b(?:caused|triggered|due|owing|attributable|attributed|traced?|down|came|result(?:ed)?|because)\s+"
                r"(?:back\s+)?(?:by|to|of|from|in)\s+(?:an?\s+|one\s+|some\s+|the\s+)?(?:simple\s+|small\s+|single\s+|honest\s+)?"
                r"(?:mistake|slip-?up|blunder)s?\b"),
            HE_MSG, HE_SUG, priority=1),
    Pattern("blame-human-error", "made a mistake",
            _rx(r"\b(?:made|makes|make|making)\s+(?:an?\s+|the\s+|one\s+)?(?:\w+\s+)?(?:mistake|blunder|error in judge?ment)s?\b"),
            HE_MSG, HE_SUG, priority=1),
    Pattern("blame-human-error", "a mistake during",
            _rx(r"\b(?:an?|the)\s+mistake\s+(?:during|in|while|when)\b"), HE_MSG, HE_SUG),
    # ---- judgements
    Pattern("blame-judgement", "careless", _rx(r"\bcareless(?:ly|ness)?\b"), JU_MSG, JU_SUG, priority=2),
    Pattern("blame-judgement", "negligent", _rx(r"\bnegligen(?:t|tly|ce)\b"), JU_MSG, JU_SUG, priority=2),
    Pattern("blame-judgement", "sloppy", _rx(r"\bslopp(?:y|ily|iness)\b"), JU_MSG, JU_SUG, priority=2),
    Pattern("blame-judgement", "lazy", _rx(r"\blaz(?:y|iness)\b" + _TECH_AFTER_LAZY), JU_MSG, JU_SUG, priority=2),
    Pattern("blame-judgement", "incompetent", _rx(r"\bincompeten(?:t|ce|tly)\b"), JU_MSG, JU_SUG, priority=2),
    Pattern("blame-judgement", "reckless", _rx(r"\breckless(?:ly|ness)?\b"), JU_MSG, JU_SUG, priority=2),
    Pattern("blame-judgement", "stupid", _rx(r"\b(?:stupid(?:ly|ity)?|dumb|foolish(?:ly)?|idiot(?:ic|s)?|clueless)\b"),
            JU_MSG, JU_SUG, priority=2),
    Pattern("blame-judgement", "inexperienced", _rx(r"\binexperience[d]?\b"), JU_MSG, JU_SUG, priority=2),
    Pattern("blame-judgement", "irresponsible",
            _rx(r"\b(?:irresponsibl[ey]|unprofessional(?:ly)?|thoughtless(?:ly)?|complacen(?:t|cy)|cavalier|amateurish|"
                r"rookie\s+mistake|(?:poor|bad|questionable)\s+judge?ment|lapse\s+(?:of|in)\s+judge?ment)\b"),
            JU_MSG, JU_SUG, priority=2),
    Pattern("blame-judgement", "panicked", _rx(r"\bpanick(?:ed|ing|y)\b"), JU_MSG, JU_SUG, _panicked, priority=2),
    Pattern("blame-judgement", "obvious mistake",
            _rx(r"\bobvious(?:ly)?\s+(?:an?\s+)?(?:mistake|error|blunder|oversight|misstep)s?\b"), JU_MSG, JU_SUG, priority=3),
    Pattern("blame-judgement", "be more careful",
            _rx(r"\b(?:more|extra|very|be|being|been)\s+careful(?:ly)?\b(?!\s+(?:review|design|testing|planning|analysis)\b)"),
            JU_MSG, JU_SUG, priority=2),
    Pattern("blame-judgement", "pay more attention",
            _rx(r"\b(?:pay(?:ing|s)?|paid)\s+(?:more|closer|better|greater|no|little|enough|attention)\b(?:\s+attention\b)?"
                r"|\b(?:not|n['’]t)\s+paying\s+attention\b|\basleep\s+at\s+the\s+wheel\b"),
            JU_MSG, JU_SUG, priority=2),
    Pattern("blame-judgement", "should have known better",
            _rx(r"\b(?:should|ought\s+to)(?:\s+have|['’]ve)?\s+known\s+better\b|\bknow(?:n)?\s+better\s+than\b"),
            JU_MSG, JU_SUG, priority=3),
    # ---- blame and fault
    Pattern("blame-fault", "to blame", _rx(r"\bto\s+blame\b"), FA_MSG, FA_SUG, _not_negated_blame, priority=2),
    Pattern("blame-fault", "blamed",
            re.compile(r"(?<!git )(?<!-)\b(?:[Bb]lam(?:ed|es|ing)|(?:[Ww]e|I|[Tt]hey|[Yy]ou|[Pp]eople|[Ll]eadership|[Mm]anagement|[Ww]e\s+all)\s+blame"
                       r"|the\s+blame\s+(?:for|on|lies|falls|rests)|(?:lay|lays|laid|put|puts|assign(?:ed)?|place[ds]?)\s+(?:the\s+)?blame)\b"
                       r"(?![-\s]*(?:free|less|culture|game|aware))"),
            FA_MSG, FA_SUG, _not_negated_blame, priority=2),
    Pattern("blame-fault", "X's fault",
            _rx(r"\b(?P<owner>[@\w-]+|no one)['’]s?\s+(?:own\s+|entire\s+)?fault\b(?![-\w])|\b(?P<owner2>my|our|their|his|her|your)\s+(?:own\s+)?fault\b(?![-\w])"),
            FA_MSG, FA_SUG, None, priority=2),
    Pattern("blame-fault", "fault of",
            _rx(r"\bfault\s+of\s+(?P<whom>(?:the\s+|an?\s+|our\s+)?[@\w-]+(?:\s+[\w-]+){0,2})"), FA_MSG, FA_SUG, _fault_of_person,
            priority=2),
    Pattern("blame-fault", "at fault", _rx(r"\bat\s+fault\b"), FA_MSG, FA_SUG, _person_subject, priority=2),
    Pattern("blame-fault", "responsible for the outage",
            _rx(r"\b(?:was|were|is|are|be|been|held)\s+(?:\w+ly\s+)?responsible\s+for\s+(?:the|this|that|today['’]s|an?|our)?\s*"
                r"(?:[\w-]+\s+)?(?:outage|incident|failure|downtime|breakage|disruption|degradation|data\s+loss|mistake|error|problem)s?\b"),
            FA_MSG, FA_SUG, _person_subject, priority=2),
    Pattern("blame-fault", "culprit", _rx(r"\bculprits?\b"), FA_MSG, FA_SUG, _clause_has_person, priority=2),
    # ---- people as the subject of a failure
    Pattern("blame-person-subject", "forgot",
            _rx(r"\b(?:forget|forgot|forgotten|forgets|forgetting|neglect|neglected|neglects|neglecting|ignore|ignored|ignores|ignoring|"
                r"overlook|disregard|miss|"
                r"overlooked|overlooks|overlooking|missed|disregarded|botched|bungled|fumbled|mishandled|"
                r"(?:messed|screwed)\s+up|dropped\s+the\s+ball|failed\s+to|fails\s+to|failing\s+to|"
                r"(?:did\s*n['’]?o?t|didn['’]t|never)\s+(?:bother(?:ed)?|notice|check|follow|read|verify|test|look\s+at|review|escalate)|"
                r"chose\s+not\s+to|refused\s+to|skipped)\b"),
            PS_MSG, PS_SUG, _person_subject, priority=0),
    Pattern("blame-person-subject", "ignored by",
            _rx(r"\b(?:was|were|been|got)\s+(?:\w+ly\s+)?(?:ignored|overlooked|missed|forgotten|neglected|disregarded|skipped|botched|mishandled)\s+by\s+"
                r"(?P<whom>(?:the\s+|an?\s+|our\s+)?[@\w-]+(?:\s+[\w-]+){0,2})"),
            PS_MSG, PS_SUG, _fault_of_person, priority=1),
    Pattern("blame-person-subject", "person's mistake",
            _rx(r"\b(?P<owner>[@\w-]+)['’]s?\s+(?:own\s+|careless\s+|simple\s+|honest\s+|big\s+)?(?:mistake|error|blunder|oversight|slip-?up|screw-?up)s?\b"
                r"|\b(?P<owner2>his|her|their|my|our|your)\s+(?:own\s+)?(?:mistake|blunder|oversight|slip-?up|screw-?up)s?\b"),
            PS_MSG, PS_SUG, None, priority=3),
]


def _possessive(ctx: Context, m: re.Match) -> bool:
    """'his mistake' always; 'the intern's mistake' when the owner is a person."""
    return True if m.group("owner2") else _possessor_is_person(ctx, m)


for _i, _p in enumerate(PATTERNS):
    if _p.term in ("X's fault", "person's mistake"):
        PATTERNS[_i] = Pattern(_p.rule, _p.term, _p.regex, _p.message, _p.suggestion, _possessive, _p.priority)

STEMS = {
    "should have": ("should", "could", "would", "ought"), "should've": ("should", "could", "would", "ought"),
    "if only": ("only",), "had ... would": ("had",),
    "human error": ("error", "mistake", "slip", "blunder", "failure"), "mistake by": ("mistake", "error", "slip", "blunder"),
    "caused by a mistake": ("mistake", "slip", "blunder"), "made a mistake": ("mistake", "blunder", "error"),
    "a mistake during": ("mistake",), "careless": ("careless",), "negligent": ("neglig",), "sloppy": ("slopp",),
    "lazy": ("lazy", "lazi"), "incompetent": ("incompeten",), "reckless": ("reckless",),
    "stupid": ("stupid", "dumb", "foolish", "idiot", "clueless"), "inexperienced": ("inexperience",),
    "irresponsible": ("irresponsib", "unprofessional", "thoughtless", "complacen", "cavalier", "amateur", "rookie",
                      "judgment", "judgement"),
    "panicked": ("panick",), "obvious mistake": ("obvious",), "be more careful": ("careful",),
    "pay more attention": ("attention", "asleep"), "should have known better": ("known", "know"),
    "to blame": ("blame",), "blamed": ("blam",), "X's fault": ("fault",), "fault of": ("fault",),
    "at fault": ("fault",), "responsible for the outage": ("responsible",), "culprit": ("culprit",),
    "forgot": ("forg", "neglect", "ignor", "overlook", "miss", "disregard", "botch", "bungl", "fumbl", "mishandl",
               "messed", "screwed", "dropped", "fail", "did", "never", "chose", "refused", "skipped"),
    "ignored by": ("ignor", "overlook", "miss", "forgotten", "neglect", "disregard", "skipped", "botched", "mishandl"),
    "person's mistake": ("mistake", "error", "blunder", "oversight", "slip", "screw"),
}

# Where each pattern can match, for `scan` to find cheaply: (anchors, probe) pairs. Every match
# holds one of its pattern's anchors followed by what the probe asks for, so a sentence without
# such an anchor cannot match. Anchors are whole words (runs of [a-z0-9_] in the lower-cased
# text: "didn't" is "didn" and "t") or apostrophes after a word character ("intern's"). A probe
# is the pattern's own regex after the anchor, relaxed (lower case, lookarounds dropped);
# None when the anchor alone is rare enough. tests/test_blame.py checks this on the corpora.
_BY = r"\s+(?:made\s+|committed\s+)?(?:by|of|on)\b"
_THEN_HAVE = r"(?:\s+(?:\w+ly|never|not|all|both|just))?\s+have\b"
_VERB = r"(?:bother(?:ed)?|notice|check|follow|read|verify|test|look\s+at|review|escalate)\b"
WAKE: dict[str, list[tuple[str, str | None]]] = {
    "should have": [("should could would", r"(?:\s+not)?" + _THEN_HAVE),
                    ("shouldn couldn wouldn", r"['’]t" + _THEN_HAVE),
                    ("ought", r"\s+to(?:\s+not|n['’]t)?" + _THEN_HAVE)],
    "should've": [("should could would", r"['’]ve\b"), ("shouldn couldn wouldn", r"['’]t['’]ve\b"),
                  ("ought", r"\s+to(?:n['’]t)?['’]ve\b")],
    "if only": [("if", r"\s+only\b")],
    "had ... would": [("had", r"\s[^.!?;]*?\bwould\b")],
    "human error": [("human operator pilot personnel staff engineer engineering admin administrator manual procedural "
                     "people", r"[\s-]+(?:errors?|mistakes?|slip-?ups?|blunders?|failures?)\b"),
                    ("user", r"[\s-]+(?:error|mistake)\b")],
    "mistake by": [("mistake mistakes error errors slipup slipups blunder blunders", _BY), ("slip", r"-ups?" + _BY)],
    "caused by a mistake": [("mistake mistakes slip slipup slipups blunder blunders", None)],
    "made a mistake": [("mistake mistakes blunder blunders judgment judgments judgement judgements", None)],
    "a mistake during": [("mistake", None)],
    "careless": [("careless carelessly carelessness", None)],
    "negligent": [("negligent negligently negligence", None)],
    "sloppy": [("sloppy sloppily sloppiness", None)],
    "lazy": [("lazy laziness", None)],
    "incompetent": [("incompetent incompetence incompetently", None)],
    "reckless": [("reckless recklessly recklessness", None)],
    "stupid": [("stupid stupidly stupidity dumb foolish foolishly idiot idiotic idiots clueless", None)],
    "inexperienced": [("inexperience inexperienced", None)],
    "irresponsible": [("irresponsible irresponsibly unprofessional unprofessionally thoughtless thoughtlessly "
                       "complacent complacency cavalier amateurish rookie judgment judgement", None)],
    "panicked": [("panicked panicking panicky", None)],
    "obvious mistake": [("obvious obviously", r"\s+(?:an?\s+)?(?:mistake|error|blunder|oversight|misstep)s?\b")],
    "be more careful": [("careful carefully", None)],
    "pay more attention": [("pay pays paying paid", r"\s+(?:more|closer|better|greater|no|little|enough|attention)\b"),
                           ("asleep", None)],
    "should have known better": [("known know", r"\s+better\b")],
    "to blame": [("blame", None)],
    "blamed": [("blame blamed blames blaming", None)],
    "X's fault": [("fault", None)],
    "fault of": [("fault", None)],
    "at fault": [("fault", None)],
    "responsible for the outage": [("responsible", r"\s+for\b")],
    "culprit": [("culprit culprits", None)],
    "forgot": [("forget forgot forgotten forgets forgetting neglect neglected neglects neglecting ignore ignored "
                "ignores ignoring overlook overlooked overlooks overlooking disregard disregarded miss missed "
                "botched bungled fumbled mishandled skipped", None),
               ("messed screwed", r"\s+up\b"), ("dropped", r"\s+the\s+ball\b"), ("failed fails failing", r"\s+to\b"),
               ("chose", r"\s+not\s+to\b"), ("refused", r"\s+to\b"), ("did", r"\s+n['’]?o?t\s+" + _VERB),
               ("didn", r"['’]o?t\s+" + _VERB), ("didnt didnot never", r"\s+" + _VERB)],
    "ignored by": [("ignored overlooked missed forgotten neglected disregarded skipped botched mishandled",
                    r"\s+by\b")],
    "person's mistake": [("mistake mistakes blunder blunders oversight oversights slip slipup slipups screw screwup "
                          "screwups", None),
                         ("' ’", r"s?\s+(?:own\s+|careless\s+|simple\s+|honest\s+|big\s+)?errors?\b")],  # X's error
}
# Patterns whose matches all start at one of their anchors (not "the intern's mistake", which
# starts before its apostrophe): `scan` tries them only at the anchors it found.
ANCHORED = {"should have", "should've", "if only", "had ... would", "human error", "mistake by", "careless",
            "negligent", "sloppy", "lazy", "incompetent", "reckless", "stupid", "inexperienced", "panicked",
            "obvious mistake", "culprit", "forgot"}
PATTERNS = [Pattern(p.rule, p.term, p.regex, p.message, p.suggestion, p.condition, p.priority, STEMS[p.term],
                    tuple((tuple(anchors.split()), re.compile(probe) if probe else None)
                          for anchors, probe in WAKE[p.term]), p.term in ANCHORED)
            for p in PATTERNS]
_WORD_RUN = re.compile(r"[a-z0-9_]+")


def trigger_for(patterns: list[Pattern]) -> tuple[re.Pattern, dict[str, tuple[int, ...]]]:
    """One word-anchored regex of every stem, and which patterns each stem wakes up."""
    owners: dict[str, list[int]] = {}
    for i, p in enumerate(patterns):
        for stem in p.stems:
            owners.setdefault(stem.lower(), []).append(i)
    # the regex matches the longest stem, so a stem also wakes the patterns of its prefixes
    merged = {s: sorted({i for t, ids in owners.items() if s.startswith(t) for i in ids}) for s in owners}
    # stems are lower case and `scan` lowers the text: twice as fast as matching with re.I
    return re.compile(rf"\b{_trie_regex(sorted(owners))}"), {k: tuple(v) for k, v in merged.items()}


@dataclass(frozen=True)
class WakeIndex:
    """The patterns' `wake` pairs arranged for `scan`. Each anchor word has (pattern id, probe,
    stem) triples, stem telling that the word starts with a stem of the pattern; and a finder,
    a regex of the words sharing its first three letters, each followed by what one of its
    probes asks for. A finder starts with a literal, so `re` skips from one to the next; it
    is compiled when a text first has one of its words."""
    probes: dict[str, tuple[tuple[int, re.Pattern | None, bool], ...]]
    finders: dict[bytes, str]  # word (as `_words` gives it) -> its finder's regex
    # word -> the words one of which the text must have too, or None: the last words of its
    # probes, when they must stand whole ('\s+have\b': no "have", no "should have")
    needs: dict[bytes, frozenset[bytes] | None]
    words: frozenset[bytes]  # the finders' and the needed words
    marks: dict[str, re.Pattern]  # anchors that are not words (apostrophes) -> regex
    unindexed: tuple[str, ...]  # stems of the patterns without `wake`: text with them takes the exhaustive path
    word_stems: bool  # every stem is a run of word characters, so a trigger match never holds a word start
    compiled: dict[str, re.Pattern] = field(default_factory=dict)

    def finder(self, regex: str) -> re.Pattern:
        found = self.compiled.get(regex)
        if found is None:
            found = self.compiled[regex] = re.compile(regex)
        return found


def wake_index_for(patterns: list[Pattern]) -> WakeIndex:
    probes: dict[str, list] = {}
    unindexed: list[str] = []
    for i, p in enumerate(patterns):
        if p.wake is None:
            unindexed += [s.lower() for s in p.stems]
            continue
        for anchors, probe in p.wake:
            for a in anchors:
                stem = _WORD_RUN.fullmatch(a) is not None and a.startswith(tuple(s.lower() for s in p.stems))
                probes.setdefault(a, []).append((i, probe, stem))

    def wanted(a: str) -> str:  # the anchor, then what one of its probes asks for
        after = "" if any(probe is None for _, probe, _ in probes[a]) else \
            "(?=" + "|".join(f"(?:{probe.pattern})" for _, probe, _ in probes[a]) + ")"
        return re.escape(a) + (r"(?![a-z0-9_])" if _WORD_RUN.fullmatch(a) else "") + after

    families: dict[str, list[str]] = {}
    for a in probes:
        if _WORD_RUN.fullmatch(a):
            families.setdefault(a[:3], []).append(a)
    finders = {}
    for words in families.values():
        finder = "|".join(wanted(a) for a in sorted(words))
        finders.update((a.encode(), finder) for a in words)
    marks = {a: re.compile(wanted(a)) for a in probes if not _WORD_RUN.fullmatch(a)}
    needs = {}
    for a in (a for words in families.values() for a in words):
        last = [_LAST_WORD.search(probe.pattern) if probe else None for _, probe, _ in probes[a]]
        needs[a.encode()] = None if None in last else frozenset(m.group(1).encode() for m in last)
    for a, ps in probes.items():  # a finder that asks for a single probe has checked it already
        if len({probe for _, probe, _ in ps}) == 1:
            probes[a] = [(i, None, stem) for i, _, stem in ps]
    stems = [s for p in patterns for s in p.stems]
    words = frozenset(finders).union(*(n for n in needs.values() if n))
    return WakeIndex({a: tuple(ps) for a, ps in probes.items()}, finders, needs, words, marks, tuple(unindexed),
                     all(re.fullmatch(r"\w+", s) for s in stems))


_LAST_WORD = re.compile(r"(?:\\s\+|\\b|\['’\])([a-z]+)\\b$")  # a probe's source ending in \s+have\b, 've\b


# ---------------------------------------------------------------- people --
NOT_NAMES = {"May", "June", "April", "August", "Will", "Mark", "Grant", "Max", "Bill", "Pat", "Rich", "Chase",
             "Dawn", "Summer", "Faith", "Hope", "Joy", "Rose", "Amber", "Ruby", "Jenkins", "Cloud", "Page",
             "Lee", "Sky", "Storm", "Win", "Art", "Don", "Guy", "Gene", "Sage", "Rust", "Swift", "Kafka",
             "Jay", "Ray", "Case", "Drew", "Frank", "Miles", "Said", "An"}


_FIRST_NAME = re.compile(r"[A-ZÀ-Þ][\w'’.-]*")
_ASCII_RUN = re.compile(r"[A-Za-z0-9_]+")


class PeopleIndex:
    """People the knowledge base knows: authors, role holders, owners and configured `people`.
    The lookups are built on first use: a file's own index is mostly only asked for `lower_runs`."""

    def __init__(self, names):
        self.names = names

    def _spelled(self) -> list[str]:
        """The names with their white space made single spaces, empty ones left out."""
        return [name for name in (" ".join(str(raw).split()) for raw in self.names) if name]

    @cached_property
    def full(self) -> dict[str, list[list[str]]]:
        """First word -> the full names it starts, as lists of words."""
        full: dict[str, list[list[str]]] = {}
        for name in self._spelled():
            parts = name.split(" ")
            if name.startswith("@") or not _FIRST_NAME.fullmatch(parts[0]) or parts[0].isupper():
                continue  # handles, team names, acronyms, lower-case ids are not people's names
            full.setdefault(parts[0], []).append(parts)
        return full

    @cached_property
    def first(self) -> set[str]:
        """First words that name a person alone: not an initial, not a word like 'May'."""
        return {word for word in self.full if len(word) > 1 and word not in NOT_NAMES}

    @cached_property
    def handles(self) -> set[str]:
        """@handles, lower case."""
        return {name.lower() for name in self._spelled() if name.startswith("@")}

    def is_name_token(self, tok: str) -> bool:
        return tok in self.first or tok.lower() in self.handles

    def lower_runs(self) -> frozenset[bytes] | None:
        """The ASCII runs of all names, lower case, among which is one of any first name in a
        lower-cased text (see `_nobody_in`): read off the names as given, so the index need
        not be built. None if a name's first word has no ASCII letter or digit."""
        if "_lower_runs" not in self.__dict__:
            text = "\n".join(str(n) for n in self.names).lower()
            self._lower_runs = None if _FIRST_WORD_WITHOUT_RUN.search(text) else frozenset(_words(text))
        return self._lower_runs

    def name_starts(self) -> tuple[frozenset[str], bool] | None:
        """The first ASCII run of each name (with the given names'), and whether all start
        with A-Z (see `_may_name`); None if a name has none."""
        if "_starts" not in self.__dict__:
            runs = [_ASCII_RUN.search(n) for n in self.full]
            runs = None if None in runs else frozenset(r.group(0) for r in runs)
            self._starts = None if runs is None else \
                (runs, all("A" <= r[0] <= "Z" for r in runs | _GIVEN_STARTS))
        return self._starts

    def __bool__(self) -> bool:
        return bool(self.first or self.handles)


# a name whose first word has no ASCII letter or digit (handles aside)
_FIRST_WORD_WITHOUT_RUN = re.compile(r"^\s*(?!@)[^\sA-Za-z0-9_]+(?!\S)", re.M)


def people_index(kb_pms, configured=()) -> PeopleIndex:
    names: set[str] = set(configured)
    for pm in kb_pms:
        names |= pm.people
    return PeopleIndex(sorted(names))


from .given_names import GIVEN_NAMES  # noqa: E402 - data

# A given name the knowledge base does not know counts where a person is likely: before a verb
# ("Dmitri pushed"), before a surname and a verb, as a possessive, or after "by".
_LIKELY_PERSON_AFTER = re.compile(r"(?:\s+[A-Z][\w'’-]+)?(?:['’]s\b|\s+(?!and\b|or\b|of\b|in\b|on\b|at\b|to\b|for\b)[a-z])")
_NAME_TOKEN = re.compile(r"(?<![\w.@/-])@[A-Za-z0-9][\w.-]*[A-Za-z0-9_]|(?<![\w@])[A-ZÀ-Þ][\w'’-]*")


_ASCII_RUNS = bytes(c if 48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122 or c == 95 else 32 for c in range(256))
_CAPITALISED_RUN = re.compile(r"[A-Z][A-Za-z0-9_]*")
_GIVEN_STARTS = frozenset(m.group(0) for n in GIVEN_NAMES if (m := _ASCII_RUN.search(n)))
# a run of every word `_is_person_token` can accept, lower case, and "who" (see `_nobody_in`)
_PERSON_RUNS = frozenset([max(re.findall(r"[a-z0-9_]+", w), key=len).encode() for w in PERSON_WORDS]
                         + [n.lower().encode() for n in GIVEN_NAMES] + [b"who"])


def _may_name(text: str, people: PeopleIndex) -> bool:
    """Could `find_names` find anyone in `text`? Most sections name nobody, and this says so
    before a regex looks at every capitalised word. A name stands between characters that
    are not ASCII letters or digits, so its first ASCII run is a run of the text; when those
    runs start with A-Z (capitalised names), it is one of the text's capitalised runs, which
    a regex finds while skipping lower case as fast as C can."""
    starts = people.name_starts()
    if "@" in text or starts is None:
        return True
    runs, capitalised = starts
    if capitalised:
        words = _CAPITALISED_RUN.findall(text)
    else:
        words = text.encode("ascii", "replace").translate(_ASCII_RUNS).decode("ascii").split()
    return not (_GIVEN_STARTS.isdisjoint(words) and runs.isdisjoint(words))


def find_names(text: str, people: PeopleIndex):
    """(start, end, name) of each person named in masked `text` (full name preferred)."""
    if not _may_name(text, people):
        return []
    out = []
    for m in _NAME_TOKEN.finditer(text):
        if out and m.start() < out[-1][1]:
            continue  # inside the full name just found ("Chen" of "May Chen")
        tok = m.group(0)
        if tok.startswith("@"):
            out.append((m.start(), m.end(), tok))
            continue
        base = re.sub(r"['’]s$", "", tok)
        end = m.start() + len(base)
        best = None
        for parts in people.full.get(base, ()):
            tail = " ".join(parts[1:])
            if tail and text.startswith(" " + tail, end) and (best is None or len(tail) > len(best)):
                best = tail
        if best:
            out.append((m.start(), end + 1 + len(best), base + " " + best))
        elif base in people.first:
            out.append((m.start(), end, base))
        elif base in GIVEN_NAMES and (_LIKELY_PERSON_AFTER.match(text, end) or text[max(0, m.start() - 3):m.start()] == "by "):
            after = re.match(r"\s+([A-Z][a-z][\w'’-]*)(?=\s+[a-z])", text[end:])
            stop = end + after.end() if after else end
            out.append((m.start(), stop, text[m.start():stop]))
    return out


# ---------------------------------------------------------------- engine --
@dataclass
class BlameSettings:
    patterns: list[Pattern]
    trigger: re.Pattern
    owners: dict[str, tuple[int, ...]]  # stem -> indexes of the patterns it wakes up
    wake: WakeIndex  # where each pattern can match
    allow: list[re.Pattern]
    levels: dict[str, str]  # term -> level
    named_sections: tuple[str, ...]


def settings_from_config(blame_cfg: dict) -> BlameSettings:
    from .config import ConfigError

    removed = {str(t).lower() for t in (blame_cfg.get("remove") or [])}
    known_terms = {p.term.lower() for p in PATTERNS}
    for t in removed:
        if t not in known_terms:
            raise ConfigError(f"blame.remove.{t}", f"unknown term (known: {', '.join(sorted(known_terms))})")
    patterns = [p for p in PATTERNS if p.term.lower() not in removed]
    for rule, terms in (blame_cfg.get("terms") or {}).items():
        from .rules.registry import REGISTRY

        r = REGISTRY.get(str(rule))
        if r is None or not r.name.startswith("blame-") or r.name == "blame-named-person":
            raise ConfigError(f"blame.terms.{rule}", "must be a blame rule such as blame-judgement")
        if not isinstance(terms, list):
            raise ConfigError(f"blame.terms.{rule}", "must be a list of phrases")
        for term in terms:
            words = r"\s+".join(re.escape(w) for w in str(term).split())
            first = str(term).split()[0].lower() if str(term).split() else ""
            if not first:
                raise ConfigError(f"blame.terms.{rule}", "terms must not be empty")
            patterns.append(Pattern(r.name, str(term), _rx(rf"\b{words}\b"), "configured blame term", _SUGGEST[r.name],
                                    priority=4, stems=(first,), wake=_term_wake(str(term))))
    trigger, owners = trigger_for(patterns)
    allow = [_rx(r"\b" + r"\s+".join(re.escape(w) for w in str(a).split()) + r"\b") for a in blame_cfg.get("allow") or []]
    levels = {}
    for term, level in (blame_cfg.get("levels") or {}).items():
        if level not in ("error", "warning", "notice", "off"):
            raise ConfigError(f"blame.levels.{term}", "use error, warning, notice or off")
        levels[str(term).lower()] = level
    unknown = set(blame_cfg) - {"remove", "terms", "allow", "levels", "named_sections"}
    if unknown:
        raise ConfigError(f"blame.{sorted(unknown)[0]}", "unknown key (use terms, remove, allow, levels, named_sections)")
    named = tuple(blame_cfg.get("named_sections") or NAMED_SECTIONS)
    return BlameSettings(patterns, trigger, owners, wake_index_for(patterns), allow, levels, named)


def _term_wake(term: str) -> tuple[tuple[tuple[str, ...], None], ...] | None:
    """A configured phrase matches only where its longest (rarest) word is. Only for ASCII
    phrases: with re.I a phrase's 'ſ' matches 's' too, which its words would not show."""
    words = sorted(_WORD_RUN.findall(term.lower()), key=lambda w: (-len(w), w))
    return (((words[0],), None),) if words and term.isascii() else None


_SUGGEST = {"blame-counterfactual": CF_SUG, "blame-human-error": HE_SUG, "blame-judgement": JU_SUG,
            "blame-fault": FA_SUG, "blame-person-subject": PS_SUG}


@dataclass(frozen=True)
class Hit:
    start: int
    end: int
    rule: str
    term: str
    message: str
    suggestion: str
    priority: int


def _sentence_bounds(text: str) -> list[int]:
    starts = [0]
    for m in SENTENCE_END.finditer(text):
        starts.append(m.end())
    return starts


_BREAK_CHARS = frozenset(".!?\"')]")  # with white space, all a sentence break is made of


def _sentence_at(text: str, pos: int, floor: int = 0) -> tuple[int, int]:
    """(start, end) of the sentence holding `pos`, cut exactly as `_sentence_bounds` cuts the
    whole text, but reading only nearby text. A break starts at [.!?\n] and holds nothing but
    _BREAK_CHARS and spaces, so the scan for breaks can start after any other character (as
    at `pos`, which must be one), or at `floor`, a known sentence start."""
    hi = pos
    while True:
        k = max(text.rfind(".", floor, hi), text.rfind("!", floor, hi), text.rfind("?", floor, hi),
                text.rfind("\n", floor, hi))
        lo = max(k, floor)
        while lo > floor and (text[lo - 1] in _BREAK_CHARS or text[lo - 1].isspace()):
            lo -= 1
        start = lo if lo == floor else None
        for m in SENTENCE_END.finditer(text, lo):
            if m.start() > pos:
                break
            start = m.end()
        else:
            m = None
        if start is not None:
            return start, m.end() if m else len(text)
        hi = lo  # that [.!?\n] ends no sentence: look further back


# Every byte but an ASCII letter, digit or '_' becomes a space (and A-Z lower case).
_ASCII_WORDS = bytes(c + 32 if 65 <= c <= 90 else c if 48 <= c <= 57 or 97 <= c <= 122 or c == 95 else 32
                     for c in range(256))
_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")
# All characters that re.I matches to an ASCII letter, or lower() turns into one: 'İ' and 'ı' (i),
# 'ſ' (s) and the Kelvin sign (k). Text with them takes the exhaustive path.
_FOLDS_TO_ASCII = re.compile("[\u0130\u0131\u017f\u212a]")


def _words(text: str) -> list[bytes]:
    """The words of text, lower case: runs of [a-zA-Z0-9_], any other character separates. A
    translate and split in C, many times cheaper than a regex over the text."""
    return text.encode("ascii", "replace").translate(_ASCII_WORDS).split()


# (start, end, [(pattern id, where its matches may start, or None for anywhere)]) of each sentence to read
Woken = list[tuple[int, int, list[tuple[int, "list[int] | None"]]]]


def scan(masked: str, settings: BlameSettings, people: PeopleIndex | None) -> list[Hit]:
    """All blame hits in masked text, overlaps resolved by priority. Text that the word index
    cannot read exactly (case folding into ASCII, configured phrases it does not know) takes
    the exhaustive path, which reads every sentence with a trigger stem."""
    lowered = masked.lower()
    if (len(lowered) != len(masked) or (not masked.isascii() and _FOLDS_TO_ASCII.search(masked))
            or (settings.wake.unindexed and any(stem in lowered for stem in settings.wake.unindexed))):
        sentences = _triggered_sentences(masked, lowered, settings)
    else:
        sentences = _woken_sentences(masked, lowered, settings)
    return _hits(masked, sentences, settings, people)


def _hits(masked: str, sentences: Woken, settings: BlameSettings, people: PeopleIndex | None) -> list[Hit]:
    """Run the woken patterns on their sentences; overlaps resolved by priority."""
    hits: list[Hit] = []
    for s0, s1, woken in sentences:
        sentence = masked[s0:s1]
        ctx = Context(sentence, s0, people)
        for i, starts in woken:
            p = settings.patterns[i]
            matches = p.regex.finditer(sentence) if starts is None else _matches_at(p.regex, sentence, starts)
            for m in matches:
                if p.condition is not None and not p.condition(ctx, m):
                    continue
                a, b = s0 + m.start(), s0 + m.end()
                if any(al.search(masked[max(0, a - 60):b + 60]) and _inside(al, masked, a, b) for al in settings.allow):
                    continue
                msg = f"'{' '.join(m.group(0).split())}': {p.message}"
                hits.append(Hit(a, b, p.rule, p.term, msg, p.suggestion, p.priority))
    return _resolve(hits) if hits else hits


def _matches_at(regex: re.Pattern, text: str, starts: list[int]) -> list[re.Match]:
    """What regex.finditer(text) gives when matches can only begin at `starts` (sorted)."""
    found, end = [], 0
    for q in starts:
        if q >= end:
            m = regex.match(text, q)
            if m:
                found.append(m)
                end = max(m.end(), q + 1)
    return found


def _triggered_sentences(masked: str, lowered: str, settings: BlameSettings) -> Woken:
    """Every sentence with a trigger stem, with the patterns its stems wake up (to be tried
    everywhere in it). The reference behaviour, which `_woken_sentences` narrows down."""
    if len(lowered) == len(masked):
        found = [(m.start(), m.group(0)) for m in settings.trigger.finditer(lowered)]
    else:  # a few characters ('İ') lower to two: match case-insensitively so offsets stay right
        found = [(m.start(), m.group(0).lower())
                 for m in re.compile(settings.trigger.pattern, re.I).finditer(masked)]
    if not found:
        return []
    starts = _sentence_bounds(masked)
    wanted: dict[int, set[int]] = {}
    for pos, stem in found:
        k = bisect.bisect_right(starts, pos) - 1
        wanted.setdefault(k, set()).update(settings.owners.get(stem, ()))
    return [(starts[k], starts[k + 1] if k + 1 < len(starts) else len(masked), [(i, None) for i in sorted(ids)])
            for k, ids in wanted.items()]


def _woken_sentences(masked: str, lowered: str, settings: BlameSettings) -> Woken:
    """What `_triggered_sentences` gives, less the patterns that cannot match: a pattern runs on
    a sentence only if a stem wakes it there and one of its anchors is there, followed by what
    its probe asks for (see WAKE). The words of the whole text say which anchors to look for;
    only the sentences around the anchors found are cut out."""
    wake = settings.wake
    found: list[tuple[int, int, bool]] = []  # (position, pattern id, a stem of it is there)
    present = wake.words.intersection(_words(lowered))
    for regex in {wake.finders[a] for a in present
                  if a in wake.finders and (wake.needs[a] is None or not wake.needs[a].isdisjoint(present))}:
        for m in wake.finder(regex).finditer(lowered):
            i, j = m.span()
            if i and lowered[i - 1] in _WORD_CHARS:
                continue  # not a whole word
            # a word start for the trigger too (an 'é' before it is a word character there)
            start = wake.word_stems and (i == 0 or not (lowered[i - 1].isalnum() or lowered[i - 1] == "_"))
            found += [(i, k, start and stem) for k, probe, stem in wake.probes[m.group()]
                      if probe is None or probe.match(lowered, j)]
    for a, finder in wake.marks.items():
        if a in lowered:
            for m in finder.finditer(lowered, 1):
                owner = lowered[m.start() - 1]  # "intern's": the sentence is the owner's
                if owner.isalnum() or owner in "_@-":
                    found += [(m.start() - 1, k, False) for k, probe, _ in wake.probes[a]
                              if probe is None or probe.match(lowered, m.end())]
    found.sort()
    sentences: list[tuple[int, int, dict[int, list[int]], set[int]]] = []
    end = 0
    for pos, k, stem in found:
        if pos >= end:
            start, end = _sentence_at(masked, pos, end)
            sentences.append((start, end, {}, set()))
        sentences[-1][2].setdefault(k, []).append(pos - start)
        if stem:
            sentences[-1][3].add(k)
    out = []
    for start, end, probed, woken in sentences:
        if len(woken) < len(probed):  # some pattern's stems are still to be seen: ask the trigger
            woken = {i for m in settings.trigger.finditer(lowered, start, end)
                     for i in settings.owners.get(m.group(0), ())}
        if not woken.isdisjoint(probed):
            out.append((start, end, [(i, probed[i] if settings.patterns[i].anchored else None)
                                     for i in sorted(woken.intersection(probed))]))
    return out


def _inside(allow: re.Pattern, text: str, a: int, b: int) -> bool:
    lo = max(0, a - 60)
    return any(m.start() + lo <= a and b <= m.end() + lo for m in allow.finditer(text[lo:b + 60]))


def _resolve(hits: list[Hit]) -> list[Hit]:
    hits.sort(key=lambda h: (-h.priority, h.start, -(h.end - h.start)))
    kept: list[Hit] = []
    for h in hits:
        if any(h.start < k.end and k.start < h.end for k in kept):
            continue
        kept.append(h)
    kept.sort(key=lambda h: h.start)
    return kept


class _Positions:
    def __init__(self, text: str, first_line: int, first_col: int = 1):
        self.text = text
        self._starts: list[int] | None = None
        self.first_line = first_line
        self.first_col = first_col

    @property
    def starts(self) -> list[int]:
        if self._starts is None:  # only files with findings pay for this
            starts, i = [0], self.text.find("\n")
            while i >= 0:
                starts.append(i + 1)
                i = self.text.find("\n", i + 1)
            self._starts = starts
        return self._starts

    def at(self, offset: int) -> tuple[int, int]:
        i = bisect.bisect_right(self.starts, offset) - 1
        col = offset - self.starts[i] + 1
        return self.first_line + i, col + (self.first_col - 1 if i == 0 else 0)


def _emit(f: Findings, hit: Hit, span: Span, settings: BlameSettings) -> None:
    level = settings.levels.get(hit.term.lower())
    if level == "off":
        return
    f.add(hit.rule, span, hit.message, hit.suggestion, level=level if level else None)


def check_blame_file(pm: Postmortem, f: Findings, settings: BlameSettings, configured_people=()) -> None:
    """Rules that need only this file: every blame rule but named people. The people
    this file names (authors, roles, owners) count as people when they are a subject."""
    people = PeopleIndex(sorted(pm.people | set(configured_people)))
    if pm.body:
        masked = mask_markdown(pm.body)
        pos = _Positions(masked, pm.body_line)
        for hit in scan(masked, settings, people):
            line, col = pos.at(hit.start)
            if any(s.line == line for s in pm.sections):  # a heading
                continue
            eline, ecol = pos.at(hit.end)
            _emit(f, hit, Span(line, col, eline, ecol), settings)
    texts = list(_front_matter_texts(pm))
    if texts:
        # one scan over all values, separated so no sentence spans two of them
        hits = scan("\n\n".join([t for _, t in texts]), settings, people)
        offsets, at = [], 0
        for _, t in texts if hits else ():
            offsets.append(at)
            at += len(t) + 2
        for hit in hits:
            i = bisect.bisect_right(offsets, hit.start) - 1
            path, text = texts[i]
            _emit(f, hit, _value_span(pm, path, text, hit.start - offsets[i], hit.end - offsets[i]), settings)


def _front_matter_texts(pm: Postmortem):
    if pm.title:
        yield ("title",), pm.title
    if pm.impact.description:
        yield ("impact", "description"), pm.impact.description
    for i, e in enumerate(pm.timeline):
        if e.event:
            yield ("timeline", i, "event"), e.event
    for a in pm.action_items:
        if a.action:
            yield ("action_items", a.index, "action"), a.action


def _value_span(pm: Postmortem, path: tuple, text: str, a: int, b: int) -> Span:
    span = _lookup_span(pm, path)
    if span.end_line == span.line and span.end_column is not None:
        width = span.end_column - span.column
        shift = 0 if width == len(text) else 1 if width == len(text) + 2 else None
        if shift is not None:
            return Span(span.line, span.column + shift + a, span.line, span.column + shift + b)
    return span


def _lookup_span(pm: Postmortem, path: tuple) -> Span:
    # front-matter keys may have been written with aliases ("description" for "event")
    if path in pm.spans:
        return pm.spans[path]
    parent = path[:-1]
    for p, s in pm.spans.items():
        if p[:-1] == parent and len(p) == len(path):
            return s
    return pm.span_of(*path)


def check_named_people(pm: Postmortem, f: Findings, people: PeopleIndex, settings: BlameSettings) -> None:
    if "blame-named-person" in f.config.rule_levels and f.config.rule_levels["blame-named-person"] == "off":
        return
    sections = [sec for sec in pm.sections if sec.name in settings.named_sections]
    # Masking blanks whole spans of markup, bounded by characters other than letters and digits
    # (backticks, brackets, line ends), so masked text names no one the raw text does not.
    if not _may_name("\n".join(sec.text for sec in sections), people):
        return
    for sec in sections:
        masked = mask_markdown(sec.text)
        pos = _Positions(masked, sec.body_start)
        for a, b, name in find_names(masked, people):
            line, col = pos.at(a)
            eline, ecol = pos.at(b)
            f.add("blame-named-person", Span(line, col, eline, ecol),
                  f"'{name}' is named in {sec.name}: names in root-cause analysis read as blame whatever the intent",
                  "refer to the role or the system ('a config change was pushed without review'); "
                  "thank people by name in What Went Well or the timeline instead")


def settings_for(cfg) -> BlameSettings:
    if cfg.blame_settings is None:
        cfg.blame_settings = settings_from_config(cfg.blame or {})
    return cfg.blame_settings
