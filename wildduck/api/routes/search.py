"""Search across a user's mailboxes: ``GET /users/:user/search`` (WildDuck's structured fields and its Gmail-like
``q`` string) and ``POST /users/:user/search`` (apply an action to every match).

Each field becomes a term of the domain's search query (:mod:`wildduck.model.search`), answered per mailbox by the
search service from the index. Two of WildDuck's fields have no index column here and are checked on the
messages the other terms leave (their stored MIME trees are read, never a blob): ``attachments`` (WildDuck's rule:
a part that is an attachment and not inside multipart/related) and ``thread``.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from quart import Response, jsonify
from quart_trio import QuartTrio

from wildduck.api.context import Api
from wildduck.api.routes.messages import LISTED_MESSAGE, ORIGIN, apply_flags, key_ms, render_views
from wildduck.api.schemas import (
    FALSE,
    MAX_UID,
    PAGING,
    STRING,
    ApiError,
    Field,
    input_error,
    listing,
    page_of,
    parse_date,
    parse_uid_set,
    success,
    takes,
    validate,
)
from wildduck.domain.rendering import MessageReader, Source, listing_view, parse
from wildduck.model import Mailbox, MessageRecord, User
from wildduck.model import search as q

#: search cursors: date in ms, mailbox id, UID (each complemented for the newest-first order)
SEARCH_KEY = re.compile(r"\d{15}\.[0-9a-f]{24}\.\d{10}")
_MAX_MS = 10**15 - 1
NEVER: q.Query = q.Not(q.All())
#: the mailboxes ``searchable`` leaves out
UNSEARCHABLE = frozenset({"\\Junk", "\\Trash"})

TERMS = {
    "q": Field(trim=True, empty_is_none=True, max=1024),
    "query": Field(trim=True, empty_is_none=True, max=255),
    "mailbox": Field("id", empty_is_none=True),
    "id": Field(trim=True, empty_is_none=True),
    "thread": Field("id", empty_is_none=True),
    "datestart": Field("date", empty_is_none=True),
    "dateend": Field("date", empty_is_none=True),
    "from": Field(trim=True, empty_is_none=True),
    "to": Field(trim=True, empty_is_none=True),
    "subject": Field(trim=True, empty_is_none=True),
    "minSize": Field("int", empty_is_none=True, min=0),
    "maxSize": Field("int", empty_is_none=True, min=0),
    "attachments": Field("bool", empty_is_none=True),
    "flagged": Field("bool", empty_is_none=True),
    "unseen": Field("bool", empty_is_none=True),
    "seen": Field("bool", empty_is_none=True),
    "searchable": Field("bool", empty_is_none=True),
    "useAndSearch": Field("bool", default=False),
    "includeHeaders": Field("bool", default=False),
    "metaData": Field("bool", default=False),
}
LISTING = {
    **TERMS,
    "threadCounters": Field("bool", default=False),
    "includeHasDrafts": Field("bool", default=False),
    "collapseThreads": Field("bool", default=False),
    "order": Field(empty_is_none=True),
    **PAGING,
    "next": Field("cursor", empty_is_none=True, pattern=SEARCH_KEY),
    "previous": Field("cursor", empty_is_none=True, pattern=SEARCH_KEY),
}
OR_FIELDS = ("query", "from", "to", "subject")
OR_MAX = 255
#: the ``or`` object (checked by :func:`_or_object`)
OR_OBJECT = {name: Field(max=OR_MAX) for name in OR_FIELDS}
ACTION_FIELDS = {"moveTo": Field("id"), "seen": Field("bool"), "flagged": Field("bool"),
                 "delete": Field("bool", default=False)}

_COUNT = {"type": "integer", "minimum": 0}
SEARCH_ANSWER = listing(LISTED_MESSAGE, {"query": STRING})
APPLY_ANSWER = success({"scheduled": {"type": "string", "pattern": "^[0-9a-f]{24}$",
                                      "description": "names nothing: the action has been applied already"},
                        "existing": FALSE, "matched": _COUNT, "updated": _COUNT})


def _header(name: str, needle: str) -> q.Query:
    return q.Header(name, needle)


def _recipient(needle: str, *names: str) -> q.Query:
    return q.Or(tuple(q.Header(n, needle) for n in names))


def _text(value: str, every: bool) -> q.Query:
    """A full-text term: the words (or quoted phrases) of ``value``, any of them (WildDuck's default) or every one
    (``useAndSearch``)."""
    terms = tuple(q.Text(w, True) for w in _words(value))
    if not terms:
        return q.All()
    return terms[0] if len(terms) == 1 else (q.And(terms) if every else q.Or(terms))


def _words(value: str) -> list[str]:
    return [m.group(1) or m.group(2) for m in re.finditer(r'"([^"]*)"|(\S+)', value) if (m.group(1) or m.group(2))]


def _and(terms: list[q.Query]) -> q.Query:
    kept = [t for t in terms if not isinstance(t, q.All)]
    if not kept:
        return q.All()
    return kept[0] if len(kept) == 1 else q.And(tuple(kept))


@dataclass(slots=True)
class Plan:
    """A search: which mailboxes, the query for each, and the checks made on the candidates' MIME trees."""

    #: mailbox -> query for it (a mailbox left out is not searched)
    mailboxes: list[Mailbox]
    query_for: Callable[[Mailbox], q.Query]
    attachments: bool | None = None
    thread: str | None = None
    text: str = ""


# -- the q string --------------------------------------------------------------------------------------------------

_TOKEN = re.compile(r'\s*(-?)(?:([A-Za-z]+):(?:"([^"]*)"?|(\S*))|"([^"]*)"?|(\S+))')
_TRUE = {"true", "1", "yes", "y", "on"}


@dataclass(slots=True)
class _Q:
    """What a ``q`` string asks, compiled per mailbox."""

    terms: list[Callable[[Mailbox], q.Query]] = field(default_factory=list)
    attachments: bool | None = None
    thread: str | None = None
    searchable: bool | None = None


def parse_q(text: str, mailboxes: list[Mailbox]) -> _Q:
    """WildDuck's ``q``: free words and ``"phrases"`` (full text), ``keyword:value`` terms (from, to, cc, bcc,
    subject, in/mailbox, id, thread, after/newer/datestart, before/older/dateend, minsize, maxsize, has:attachment,
    attachments, is:read|unread|starred, seen, unseen, flagged, searchable), ``-`` negating a term and ``OR``
    between two terms; everything else is ANDed. 400 naming ``q`` for what cannot be read."""
    out = _Q()
    pending_or: list[Callable[[Mailbox], q.Query]] | None = None
    for m in _TOKEN.finditer(text):
        negated, key, quoted_value, value, phrase, word = m.groups()
        if key is None and word == "OR" and not negated:
            if not out.terms:
                continue
            pending_or = [out.terms.pop()]
            continue
        term = _q_term(key, quoted_value if quoted_value is not None else value, phrase, word, mailboxes, out,
                       bool(negated))
        if term is None:
            continue
        if pending_or is not None:
            branches = [*pending_or, term]
            term = (lambda bs: (lambda mb: q.Or(tuple(b(mb) for b in bs))))(branches)
            pending_or = None
        out.terms.append(term)
    if pending_or is not None:
        out.terms.extend(pending_or)
    return out


def _constant(query: q.Query) -> Callable[[Mailbox], q.Query]:
    return lambda _mailbox: query


def _q_term(key: str | None, value: str | None, phrase: str | None, word: str | None, mailboxes: list[Mailbox],
            out: _Q, negated: bool) -> Callable[[Mailbox], q.Query] | None:
    def bad(message: str) -> ApiError:
        return input_error({"q": f'"q" {message}'})

    def flag_term(query: q.Query) -> Callable[[Mailbox], q.Query]:
        return _constant(q.Not(query) if negated else query)

    if key is None:
        needle = phrase if phrase is not None else word or ""
        return flag_term(q.Text(needle, True)) if needle else None
    key = key.lower()
    value = (value or "").strip()
    if key in ("from", "subject", "cc", "bcc"):
        return flag_term(q.Header(key, value)) if value else None
    if key == "to":
        return flag_term(_recipient(value, "to", "cc", "bcc")) if value else None
    if key in ("in", "mailbox"):
        wanted = _resolve_mailboxes(value, mailboxes, by_path=key == "in")
        return lambda mb: NEVER if (mb.id in wanted) == negated else q.All()
    if key == "id":
        try:
            ranges = parse_uid_set("q", value)
        except ValueError:
            raise bad(f"has an invalid id: {value}") from None
        return flag_term(q.Uids.of(ranges))
    if key in ("after", "newer", "datestart", "before", "older", "dateend"):
        try:
            when = parse_date("q", value)
        except ValueError:
            raise bad(f"has an invalid date: {value}") from None
        since = key in ("after", "newer", "datestart")
        return flag_term(q.Instant("since", when) if since else q.Instant("before", when))
    if key in ("minsize", "maxsize"):
        if not value.isdigit():
            raise bad(f"has an invalid size: {value}")
        size = int(value)
        return flag_term(q.Size("larger", size - 1) if key == "minsize" else q.Size("smaller", size + 1))
    if key in ("has", "attachments", "thread", "searchable"):
        if negated:
            raise bad(f"cannot negate {key}:")
        if key == "has":
            if value.lower() not in ("attachment", "attachments"):
                return None
            out.attachments = True
        elif key == "attachments":
            out.attachments = value.lower() in _TRUE
        elif key == "thread":
            out.thread = value.lower()
        else:
            out.searchable = value.lower() in _TRUE
        return None
    if key == "is":
        flags = {"starred": (q.Flag("\\Flagged"), False), "flagged": (q.Flag("\\Flagged"), False),
                 "read": (q.Flag("\\Seen"), False), "seen": (q.Flag("\\Seen"), False),
                 "unread": (q.Flag("\\Seen"), True), "unseen": (q.Flag("\\Seen"), True)}
        found = flags.get(value.lower())
        if found is None:
            return None
        query, inverted = found
        return _constant(q.Not(query) if inverted != negated else query)
    if key in ("flagged", "seen", "unseen"):
        state = value.lower() in _TRUE
        query = q.Flag("\\Flagged" if key == "flagged" else "\\Seen")
        positive = state if key != "unseen" else not state
        return _constant(query if positive != negated else q.Not(query))
    return None  # an unknown keyword is ignored, as WildDuck does


def _resolve_mailboxes(value: str, mailboxes: list[Mailbox], *, by_path: bool) -> set[str]:
    if re.fullmatch(r"[0-9a-fA-F]{24}", value):
        return {m.id for m in mailboxes if m.id == value.lower()}
    if not by_path:
        return set()
    special = next((use for pattern, use in ((r"/?(spam|junk)", "\\Junk"), (r"/?sent", "\\Sent"),
                                             (r"/?(trash|deleted)", "\\Trash"), (r"/?drafts", "\\Drafts"))
                    if re.match(pattern, value, re.I)), None)
    return {m.id for m in mailboxes
            if (m.path == "INBOX" and value.upper() == "INBOX") or m.path == value
            or (special is not None and m.special_use == special)}


# -- planning ------------------------------------------------------------------------------------------------------

async def plan(api: Api, user: User, values: dict[str, Any]) -> Plan:
    """The search the parameters ask for (400 naming the field for what cannot be read)."""
    every = await api.services.mailboxes.all(user.id)
    chosen = every
    if values.get("mailbox"):
        chosen = [m for m in every if m.id == values["mailbox"]]
        if not chosen:
            raise ApiError(404, "NoSuchMailbox", "This mailbox does not exist")
    terms: list[q.Query] = []
    text = values.get("q") or values.get("query") or ""
    if values.get("q"):
        parsed = parse_q(values["q"], every)
        searchable = parsed.searchable if parsed.searchable is not None else values.get("searchable")
        if searchable and not values.get("mailbox"):
            chosen = [m for m in chosen if m.special_use not in UNSEARCHABLE]
        funcs = parsed.terms

        def query_for(mailbox: Mailbox) -> q.Query:
            return _and([f(mailbox) for f in funcs])

        return Plan(chosen, query_for, parsed.attachments, parsed.thread, text)
    if values.get("query"):
        terms.append(_text(values["query"], values["useAndSearch"]))
    if values.get("from"):
        terms.append(_header("from", values["from"]))
    if values.get("to"):
        terms.append(_recipient(values["to"], "to", "cc"))
    if values.get("subject"):
        terms.append(_header("subject", values["subject"]))
    if values.get("datestart"):
        terms.append(q.Instant("since", values["datestart"]))
    if values.get("dateend"):
        terms.append(q.Instant("before", values["dateend"]))
    if values.get("minSize"):
        terms.append(q.Size("larger", values["minSize"] - 1))
    if values.get("maxSize"):
        terms.append(q.Size("smaller", values["maxSize"] + 1))
    if values.get("flagged"):
        terms.append(q.Flag("\\Flagged"))
    if values.get("unseen"):
        terms.append(q.Not(q.Flag("\\Seen")))
    elif values.get("seen"):
        terms.append(q.Flag("\\Seen"))
    if values.get("id") and values.get("mailbox"):
        try:
            terms.append(q.Uids.of(parse_uid_set("id", values["id"])))
        except ValueError as exc:
            raise input_error({"id": str(exc)}) from None
    ors = values.get("or") or {}
    branches = [b for b in (
        _text(ors["query"], False) if ors.get("query") else None,
        _header("from", ors["from"]) if ors.get("from") else None,
        _recipient(ors["to"], "to", "cc") if ors.get("to") else None,
        _header("subject", ors["subject"]) if ors.get("subject") else None,
    ) if b is not None]
    if branches:
        terms.append(branches[0] if len(branches) == 1 else q.Or(tuple(branches)))
    if values.get("searchable") and not values.get("mailbox"):
        chosen = [m for m in chosen if m.special_use not in UNSEARCHABLE]
    query = _and(terms)
    return Plan(chosen, lambda _mailbox: query, True if values.get("attachments") else None, values.get("thread"),
                text)


def _or_object(params: dict[str, Any]) -> dict[str, str]:
    """The ``or`` parameter: ``{query, from, to, subject}`` strings."""
    value = params.pop("or", None)
    if value is None or value == "":
        return {}
    if not isinstance(value, dict) or set(value) - set(OR_FIELDS) or not all(
            isinstance(v, str) and len(v) <= OR_MAX for v in value.values()):
        raise input_error({"or": '"or" must be an object of strings (query, from, to, subject)'})
    return {k: v.strip() for k, v in value.items() if v.strip()}


@dataclass(frozen=True, slots=True)
class Match:
    mailbox: Mailbox
    record: MessageRecord


def _complement_hex(value: str) -> str:
    return "".join("0123456789abcdef"[15 - int(c, 16)] for c in value)


def _key(match: Match, descending: bool) -> str:
    ms = key_ms(match.record.internal_date)
    uid = match.record.uid
    if descending:
        return f"{_MAX_MS - ms:015d}.{_complement_hex(match.mailbox.id)}.{MAX_UID - uid:010d}"
    return f"{ms:015d}.{match.mailbox.id}.{uid:010d}"


def register(app: QuartTrio, api: Api) -> None:
    sv = api.services
    reader = MessageReader(sv.messages)

    async def matches(p: Plan) -> list[Match]:
        """Every match of the plan, in no particular order."""
        out: list[Match] = []
        for mailbox in p.mailboxes:
            query = p.query_for(mailbox)
            if query == NEVER:
                continue
            uids = await sv.search.search_stored(mailbox.id, query)
            if not uids:
                continue
            if p.attachments is not None or p.thread is not None:
                uids = [s.record.uid for s in await reader.sources(mailbox.id, uids, text=False)
                        if _checks(s, p)]
            records = await sv.messages.records(mailbox.id, uids, content=False)
            out.extend(Match(mailbox, r) for r in records)
        return out

    @app.get("/users/<user_id>/search")
    @takes(LISTING, objects={"or": OR_OBJECT}, returns=SEARCH_ANSWER)
    async def search(user_id: str) -> Response:
        params = await api.params()
        ors = _or_object(params)
        values = await api.values(params)
        values["or"] = ors
        if values.get("order") not in (None, "asc", "desc"):
            raise input_error({"order": '"order" must be one of [asc, desc]'})
        user = await api.target_user(user_id)
        p = await plan(api, user, values)
        descending = values.get("order") != "asc"
        found = sorted(await matches(p), key=lambda m: _key(m, descending))
        page = page_of(found, lambda m: _key(m, descending), values)
        include = values["includeHeaders"]
        results: list[dict[str, Any]] = []
        chunk: list[Match] = page["results"]
        by_mailbox: dict[str, list[int]] = {}
        for m in chunk:
            by_mailbox.setdefault(m.mailbox.id, []).append(m.record.uid)
        sources: dict[tuple[str, int], Source] = {}
        for mailbox_id, uids in by_mailbox.items():
            for s in await reader.sources(mailbox_id, uids):
                sources[(mailbox_id, s.record.uid)] = s
        ordered = [sources[k] for m in chunk if (k := (m.mailbox.id, m.record.uid)) in sources]
        results = await render_views(ordered, lambda s: listing_view(s.record, s, include_headers=include))
        if values["threadCounters"]:  # per result: its thread's messages in its mailbox
            counts: dict[tuple[str, str], int] = {}
            for mailbox_id in by_mailbox:
                threads = [view["thread"] for view in results if view["mailbox"] == mailbox_id]
                found_counts = await sv.messages.thread_counts(mailbox_id, threads)
                counts.update({(mailbox_id, t): n for t, n in found_counts.items()})
            for view in results:
                view["threadMessageCount"] = counts.get((view["mailbox"], view["thread"]), 1)
        return jsonify({"success": True, "query": p.text, "total": page["total"], "page": page["page"],
                        "previousCursor": page["previousCursor"], "nextCursor": page["nextCursor"],
                        "results": results})

    @app.post("/users/<user_id>/search")
    @takes(TERMS, objects={"or": OR_OBJECT, "action": ACTION_FIELDS}, required=("action",), returns=APPLY_ANSWER)
    async def search_apply(user_id: str) -> Response:
        params = await api.params()
        ors = _or_object(params)
        action = params.pop("action", None)
        values = await api.values(params)
        values["or"] = ors
        if not isinstance(action, dict):
            raise input_error({"action": '"action" is required' if action is None else '"action" must be an object'})
        act = validate(action, ACTION_FIELDS)
        if act["delete"] and any(k in act for k in ("moveTo", "seen", "flagged")):
            others = ", ".join(k for k in ("moveTo", "seen", "flagged") if k in act)
            raise input_error({"action": f"When 'delete' is true, no other fields ({others}) can be set"})
        user = await api.target_user(user_id)
        target = await api.mailbox_of(user, act["moveTo"], "action.moveTo") if "moveTo" in act else None
        p = await plan(api, user, values)
        found = await matches(p)
        by_mailbox: dict[str, tuple[Mailbox, list[int]]] = {}
        for m in found:
            by_mailbox.setdefault(m.mailbox.id, (m.mailbox, []))[1].append(m.record.uid)
        changed = 0
        for mailbox, uids in by_mailbox.values():
            if act["delete"]:
                changed += len(await sv.messages.expunge(mailbox, uids, origin=ORIGIN))
                continue
            await apply_flags(sv.messages, mailbox, uids, act)
            if target is not None and target.id != mailbox.id:
                await sv.messages.move(mailbox, uids, target, origin=ORIGIN)
            changed += len(uids)
        # WildDuck schedules a task and answers with its id; this server has applied the action already (the
        # id names nothing that could be looked up), and says how many messages matched and changed
        return jsonify({"success": True, "scheduled": secrets.token_hex(12), "existing": False,
                        "matched": len(found), "updated": changed})


def _checks(source: Source, p: Plan) -> bool:
    """The checks of each message's record and MIME tree: WildDuck's ``attachments`` and ``thread``."""
    if p.attachments is not None:
        has = any(not a.related for a in parse(source, with_text=False).attachments)
        if has != p.attachments:
            return False
    return p.thread is None or source.record.thread_id == p.thread
