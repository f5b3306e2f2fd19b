"""A plan as Markdown for pull-request comments (GitHub-flavoured).

At most :data:`LIMIT` characters: each resource's details sit in a collapsed
``<details>`` block, and when the whole would not fit, the details of the last
resources are left out and the comment says how many. The summary line and the data
verdict always come first, so a reviewer sees them without expanding anything.
"""

from __future__ import annotations

from rune_sync.cli.render.plan_text import NO_DATA_DESTROYED, headline_facts, verdict_lines
from rune_sync.plan.model import Action, Change, DiffOp, Plan

LIMIT = 65_000
VICTIMS_LISTED = 200
"""Victims named in the comment's head; the rest are counted."""


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _details(change: Change) -> str:
    blocked = f" (blocked: needs {change.blocked})" if change.blocked else ""
    facts = headline_facts(change)
    facts = f" ({_escape(facts)})" if facts else ""
    rows = [
        f"<details><summary><code>{change.action.symbol or '='} {change.address}</code>"
        f"{facts} — {_escape(change.action.value)}{blocked}</summary>",
        "",
        f"{_escape(change.reason)}",
        "",
    ]
    if change.drift:
        rows += [f"**Drift:** {_escape(change.drift)}", ""]
    if change.diffs:
        rows += ["| field | before | after |", "| --- | --- | --- |"]
        for d in change.diffs:
            old = "" if d.op is DiffOp.ADD else f"`{_escape(str(d.old))}`"
            new = "" if d.op is DiffOp.REMOVE else f"`{_escape(str(d.new))}`"
            rows.append(f"| `{d.path}` | {old} | {new} |")
        rows.append("")
    if change.snapshot_first:
        rows += ["A snapshot is taken first and checked before anything is destroyed.", ""]
    rows.append("</details>")
    return "\n".join(rows)


def render(plan: Plan, *, header: str | None = None) -> str:
    """The comment body; never longer than :data:`LIMIT` characters."""
    head = ["### rune-sync plan", ""]
    source = plan.source or {}
    if source.get("kind") == "git" and source.get("commit"):
        where = f"ref `{source['ref']}`" if source.get("ref") else "remote HEAD"
        if source.get("path"):
            where += f", path `{source['path']}`"
        head += [
            f"**Source:** `{source.get('url')}` ({where})  ",
            f"**Commit:** `{source['commit']}` — {_escape(str(source.get('subject') or ''))}  ",
            f"by {_escape(str(source.get('author') or ''))} on {source.get('date') or ''}",
            "",
        ]
    if header:
        head += [_escape(header), ""]
    head += [f"**{plan.summary.line()}**", ""]
    verdict = list(verdict_lines(plan))
    if plan.victims:
        head += [":warning: **" + verdict[0] + "**", ""]
        listed = verdict[1 : 1 + VICTIMS_LISTED]
        head += [f"- `{line.strip()}`" for line in listed]
        if len(verdict) - 1 > len(listed):
            head.append(
                f"- …and {len(verdict) - 1 - len(listed)} more (see the job log or "
                "`rune-sync plan --format json`)"
            )
        head.append("")
    else:
        head += [f":white_check_mark: {NO_DATA_DESTROYED}", ""]
    if plan.mass_delete:
        head += [
            f":no_entry: **Refused:** {_escape(plan.mass_delete)} "
            "(pass `--allow-mass-delete` if this is intended)",
            "",
        ]
    active = [c for c in plan.changes if c.action is not Action.NOOP]
    if not active:
        head.append("No changes. The storage matches the source.")
    body = "\n".join(head).rstrip("\n")
    blocks = [_details(c) for c in active]
    out = [body]
    used = len(body)
    omitted = 0
    for i, block in enumerate(blocks):
        reserve = 200  # room for the closing note
        if used + len(block) + 2 + reserve > LIMIT:
            omitted = len(blocks) - i
            break
        out.append(block)
        used += len(block) + 2
    if omitted:
        out.append(
            f"_…and {omitted} more change(s) left out to stay within GitHub's comment "
            "size; run `rune-sync plan` locally or see the job log for all of them._"
        )
    return "\n\n".join(out) + "\n"
