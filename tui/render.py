"""Text for people, shared by the command line and the app's screens (no Textual here): a
research event as one line, a rating in words, an indexing summary, a session as Markdown.

Text from outside (page and file text, titles, URLs, file names, questions, model output) is
data: `plain` strips terminal control and escape sequences before anything is printed, and the
app shows it as `literal` Rich Text, never parsed as markup.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from rich.text import Text

from sleuth.agent.citations import MARKER
from sleuth.agent.research.events import (
    AnswerRejected,
    BudgetExhausted,
    Event,
    EvidenceChosen,
    PageFetched,
    PlanReady,
    Reflected,
    RunFinished,
    SearchDone,
    SearchIssued,
    StepFailed,
    StepRetried,
)
from sleuth.agent.tools.library import IndexReport
from sleuth.store import Store
from sleuth.store.rows import Rating

# ESC-introduced sequences (CSI "ESC [ ... final", OSC "ESC ] ... BEL or ESC \\", and two-byte
# ones), then any other C0 or C1 control character but newline and tab.
_CONTROL = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[@-_]"
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"
)


# Characters that change how text around them is shown without being seen: bidirectional
# overrides and isolates ("evil\u202etxt.md" shows as "evildm.txt") are made visible as their
# code point; zero-width characters, which hide inside words and names, are removed.
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_ZERO_WIDTH = re.compile("[\u200b-\u200d\u2060-\u2064\ufeff]")


def plain(text: object) -> str:
    """`text` without terminal control or escape sequences (newlines and tabs kept), with
    bidirectional controls shown as <U+202E> and zero-width characters removed."""
    text = _ZERO_WIDTH.sub("", _CONTROL.sub("", str(text)))
    return _BIDI.sub(lambda m: f"<U+{ord(m.group()):04X}>", text)


def one_line(text: object) -> str:
    """`plain` text kept on one line: a newline inside it (a file may be named so) is shown
    as \\n, so it cannot start a line that looks like Sleuth's own."""
    return plain(text).replace("\n", "\\n")


def literal(text: object, style: str = "") -> Text:
    """`text` for a Textual widget: shown as it is, never parsed as markup."""
    return Text(plain(text), style=style)


def describe(event: Event, *, timing: bool = True) -> str | None:
    """One line for a research event, as plain text (see `_describe`)."""
    line = _describe(event, timing=timing)
    return one_line(line) if line is not None else None


def _describe(event: Event, *, timing: bool = True) -> str | None:
    """One line for a research event (None for events not worth a line: tokens, model calls).
    Without `timing` the run's end leaves out its seconds (the app's status bar shows them)."""
    match event:
        case PlanReady(round=round_number, subquestions=subs, fallback=fallback):
            head = "plan" if round_number == 1 else f"round {round_number}"
            note = (
                " (the model's plan was unusable; searching the question itself)"
                if fallback
                else ""
            )
            items = "; ".join(f"{s['tool']}: {s['query']}" for s in subs)
            return f"{head}: {len(subs)} search(es){note} — {items}"
        case SearchIssued(query=query, tool=tool):
            where = "the library" if tool == "search_library" else "the web"
            return f"searching {where}: {query}"
        case SearchDone(query=query, tool=tool, results=results, cached=cached):
            where = "library" if tool == "search_library" else "web"
            note = " (cached)" if cached else ""
            return f"searched {where} for {query!r}: {len(results)} result(s){note}"
        case PageFetched(title=title, url=url, cached=cached, via=via):
            how = "cached" if cached else ("followed" if via == "follow_link" else "read")
            return f"{how}: {title} <{url}>"
        case StepFailed(action=action, target=target, error=error):
            return f"failed {action} {target}: {error}"
        case StepRetried(action=action, target=target, attempt=attempt, wait_s=wait, error=error):
            return f"retrying {action} {target} in {wait:.1f} s (attempt {attempt} failed: {error})"
        case Reflected(enough=enough, new_queries=queries, follow_links=links, bridges=bridges):
            if enough or not (queries or links):
                return "reflection: enough to answer"
            via = f" ({bridges} from names the passages found)" if bridges else ""
            return f"reflection: {len(queries)} new search(es){via}, {len(links)} link(s) to follow"
        case EvidenceChosen(items=items, dropped_duplicates=dropped, reused_from_run=reused):
            extra = f", {dropped} near-duplicate(s) dropped" if dropped else ""
            origin = f" (reused from run {reused})" if reused else ""
            return f"evidence: {len(items)} passage(s){extra}{origin}"
        case AnswerRejected(problems=found, retrying=retrying):
            then = "writing it again" if retrying else "quoting the evidence instead"
            return f"answer rejected ({'; '.join(found)}): {then}"
        case BudgetExhausted(reason=reason):
            return f"budget: {reason}; writing with what was found"
        case RunFinished(status=status, seconds=seconds, llm_calls=calls, pages=pages, error=error):
            took = f" in {seconds:.1f} s" if timing else ""
            if status == "no_evidence":
                return f"no answer{took}: {error}"
            text = f"{status}{took}: {calls} model call(s), {pages} page(s) read"
            return text + (f" — {error}" if error else "")
    return None


def is_trouble(event: Event) -> bool:
    """Whether an event's line is a failure or a limit the user should see in red."""
    if isinstance(event, RunFinished):
        return event.status != "done"
    return event.failed or isinstance(event, BudgetExhausted | AnswerRejected)


def unsure_note(verification: dict | None) -> str | None:
    """What marks an answer the reward model is not sure of (None for a sure one)."""
    verification = verification or {}
    if not verification.get("not_sure"):
        return None
    confidence = verification.get("confidence")
    said = f" ({confidence:.0%} confident)" if isinstance(confidence, (int, float)) else ""
    return (
        f"Not sure{said}: the reward model rates this short answer below its threshold. "
        "The quotes under it are what the sources say; rate it to teach it."
    )


def describe_rating(rating: Rating | None, *, comment: bool = True) -> str:
    """A rating in words: "thumbs up, 4/5 stars, “a comment”" (or "not rated")."""
    if rating is None:
        return "not rated"
    parts = []
    if rating.thumb:
        parts.append("thumbs up" if rating.thumb > 0 else "thumbs down")
    if rating.stars:
        parts.append(f"{rating.stars}/5 stars")
    if comment and rating.comment:
        parts.append(f"“{plain(rating.comment)}”")
    if rating.correction:
        parts.append("corrected")
    return ", ".join(parts) or "not rated"


def index_summary(report: IndexReport) -> str:
    """What an indexing pass did, in one line."""
    skipped = f", skipped {report.skipped}" if report.skipped else ""
    text = (
        f"indexed {report.indexed}, unchanged {report.unchanged}, failed {report.failed}, "
        f"removed {report.removed}{skipped}; {report.chunks} chunks, "
        f"{report.bytes / 1e6:.1f} MB in {report.seconds:.1f} s"
    )
    return text + (" (interrupted: run it again to finish)" if report.cancelled else "")


def session_markdown(store: Store, session_id: int) -> str:
    """A readable report of a session: each question, its latest answer, and its sources.
    Everything from outside (titles, questions, answers, quotes, URLs) is escaped for Markdown
    and HTML (`md_text`), and a source links only to an http(s) or file URL (`md_link`)."""
    session = store.runs.session(session_id)
    lines = [
        f"# {md_line(session.title)}",
        "",
        f"Session {session_id}, started {md_line(session.created_at)}.",
        "",
    ]
    for turn in store.runs.turns(session_id):
        lines += [f"## {md_line(turn.question)}", ""]
        answers = store.runs.answers_for_turn(turn.id)
        if not answers:
            lines += ["_No answer was written for this question._", ""]
            continue
        answer = answers[-1]
        lines += [md_text(answer.text.strip()), ""]
        rating = store.feedback.rating(answer.id)
        rated = rating is not None and (rating.thumb or rating.stars)
        meta = f"Answer {answer.id} by {md_line(answer.model_name or 'unknown model')}"
        described = md_line(describe_rating(rating, comment=False))
        lines += [f"_{meta}{'; rated ' + described if rated else ''}._", ""]
        if rating is not None and rating.correction:
            lines += ["**Corrected by the user:** " + md_line(rating.correction), ""]
        evidence = store.runs.evidence(answer.run_id)
        if evidence:
            lines += ["### Sources", ""]
            lines += [f"{e.number}. {md_link(e.title or e.uri, e.uri)}" for e in evidence]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


# What Markdown (CommonMark) would read as markup in outside text: emphasis, code and escapes
# anywhere; "<", ">" and "&" become HTML entities, which every renderer shows as the characters
# and none reads as a tag; brackets unless they are a citation marker ("[1]") that nothing
# could turn into a link (not followed by "(", "[" or ":"); and at a line's start, what would
# open a heading, a list or a rule.
_MD_INLINE = re.compile(rf"({MARKER})(?![(\[:])|([\\`*_\[\]])")
_MD_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_MD_LINE_START = re.compile(r"^(\s*(?:&gt; )*\s*)([-+=#]|\d+(?=[.)]))", re.M)
_MD_QUOTE = re.compile(r"^((?:&gt; )+)", re.M)  # Sleuth's own quote marks at a line's start


def md_text(text: object) -> str:
    """Outside text as Markdown that shows it as it is: no link, image, HTML tag, heading or
    list it did not mean (its lines stay lines, its citation markers stay as they are)."""
    out = "".join(_MD_ENTITIES.get(ch, ch) for ch in plain(text))
    out = _MD_INLINE.sub(lambda m: m.group(1) or "\\" + m.group(2), out)
    out = _MD_LINE_START.sub(_escape_line_start, out)
    return _MD_QUOTE.sub(lambda m: m.group(1).replace("&gt;", ">"), out)


def _escape_line_start(match: re.Match) -> str:
    lead, mark = match.group(1), match.group(2)
    if mark[0].isdigit():  # "1." / "1)": escape the mark after the number
        return f"{lead}{mark}\\"
    return f"{lead}\\{mark}"


def md_line(text: object) -> str:
    """`md_text` on one line (a heading, a list item): its whitespace joined."""
    return md_text(" ".join(plain(text).split()))


_LINKABLE = re.compile(r"^(?:https?://|file://|/(?!/))", re.I)  # web, file URL, local path


def md_link(label: object, url: object) -> str:
    """A Markdown link to `url` when it is http(s), a file URL or a local path, else the label
    and the URL as text; the URL percent-encoded where Markdown would read it otherwise."""
    shown = md_line(label)
    address = " ".join(plain(url).split())
    if not _LINKABLE.match(address):
        return f"{shown} ({md_line(address)})" if address and address != plain(label) else shown
    safe = quote(address, safe="/:?#[]@!$&'*+,;=%~-._")
    safe = safe.replace("(", "%28").replace(")", "%29").replace("[", "%5B").replace("]", "%5D")
    return f"[{shown}]({safe})"
