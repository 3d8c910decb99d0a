"""Mailboxes: path rules, the hierarchy, create/rename/delete, subscriptions and status, in one place.

Every protocol (IMAP, POP3's INBOX, the API) goes through :class:`MailboxService`; it publishes the nudges that tell
sessions a mailbox they selected was deleted or renamed.
"""

from __future__ import annotations

from dataclasses import dataclass

from wildduck.errors import AlreadyExists, InvalidInput, NotFound, NotPermitted
from wildduck.model import Mailbox, MailboxSpec, MailboxStatus, Nudge, user_channel
from wildduck.ports import Mailboxes, PubSub

#: the hierarchy separator of every path
SEPARATOR = "/"
#: characters no mailbox name may contain (IMAP wildcards, line breaks, NUL)
_FORBIDDEN = frozenset("\r\n\x00*%")
#: longest path accepted, in characters (WildDuck: 512 bytes per path)
MAX_PATH = 512
#: deepest hierarchy accepted
MAX_DEPTH = 32


class NoSuchMailbox(NotFound):
    """The user has no mailbox with this path."""


#: the mailbox id of the nudge that says the user's subscriptions changed (no mailbox has it; NOTIFY's
#: SubscriptionChange, RFC 5465 5.5, reads them again)
SUBSCRIPTIONS = ""


def normalize_path(name: str) -> str:
    """The canonical form of a mailbox path: a trailing separator dropped ("A/" names "A", RFC 3501 6.3.3), INBOX
    in upper case whatever its case; InvalidInput for empty levels, forbidden characters, or an oversize path."""
    name = name.rstrip(SEPARATOR)
    if name.upper() == "INBOX":
        return "INBOX"
    levels = name.split(SEPARATOR)
    if not name or any(not level for level in levels) or any(c in _FORBIDDEN for c in name):
        raise InvalidInput("invalid mailbox name", "path")
    if len(name) > MAX_PATH or len(levels) > MAX_DEPTH:
        raise InvalidInput(f"mailbox name is longer than {MAX_PATH} characters or {MAX_DEPTH} levels", "path")
    return name


def parents(path: str) -> list[str]:
    """The superior levels of ``path``, outermost first (``a/b/c`` → ``a``, ``a/b``)."""
    levels = path.split(SEPARATOR)
    return [SEPARATOR.join(levels[:depth]) for depth in range(1, len(levels))]


@dataclass(frozen=True, slots=True)
class HierarchyEntry:
    """One name a LIST may show: an existing mailbox, a level that only leads to mailboxes (``mailbox`` None,
    \\Noselect), or a subscribed name whose mailbox is gone (``mailbox`` None, ``subscribed``, not ``level``)."""

    path: str
    mailbox: Mailbox | None
    subscribed: bool
    has_children: bool
    #: a missing superior level of existing mailboxes
    level: bool = False


@dataclass(frozen=True, slots=True)
class Hierarchy:
    """A user's mailboxes with the missing levels and subscriptions, for listing."""

    entries: list[HierarchyEntry]
    subscriptions: frozenset[str]

    def paths(self) -> frozenset[str]:
        return frozenset(e.path for e in self.entries if e.mailbox is not None)


class MailboxService:
    """The mailbox rules. ``publish`` nudges go to the owner's channel."""

    def __init__(self, mailboxes: Mailboxes, pubsub: PubSub) -> None:
        self.store = mailboxes
        self.pubsub = pubsub

    async def find(self, user_id: str, path: str) -> Mailbox | None:
        """The user's mailbox at ``path`` (normalized first), or None."""
        return await self.store.find_mailbox(user_id, normalize_path(path))

    async def get(self, user_id: str, path: str) -> Mailbox:
        """The user's mailbox at ``path``; NoSuchMailbox if there is none."""
        found = await self.find(user_id, path)
        if found is None:
            raise NoSuchMailbox(f"no mailbox {normalize_path(path)}")
        return found

    async def get_by_id(self, mailbox_id: str) -> Mailbox:
        return await self.store.get_mailbox(mailbox_id)

    async def special(self, user_id: str, use: str) -> Mailbox | None:
        """The user's mailbox with the special-use attribute ``use`` (``"\\Trash"``...), or None."""
        return next((m for m in await self.all(user_id) if m.special_use == use), None)

    async def all(self, user_id: str) -> list[Mailbox]:
        """Every mailbox of the user, INBOX first, then by path."""
        return await self.store.list_mailboxes(user_id)

    async def create(self, user_id: str, path: str, *, subscribed: bool = False,
                     special_use: str | None = None) -> Mailbox:
        """Create ``path`` and the superior levels that do not exist yet (RFC 3501 6.3.3).

        Mailboxes made by a client start unsubscribed unless asked (subscribing is the client's decision, 6.3.6).
        Raises AlreadyExists (also for INBOX) or InvalidInput.
        """
        path = normalize_path(path)
        if path == "INBOX":
            raise AlreadyExists("INBOX exists")
        created = await self.store.create_mailbox(user_id, MailboxSpec(path, special_use, subscribed=subscribed))
        for parent in parents(path):
            try:
                await self.store.create_mailbox(user_id, MailboxSpec(parent, subscribed=False))
            except AlreadyExists:
                pass
        # a nudge with MODSEQ 0 for a mailbox no session knows: NOTIFY's MailboxName (RFC 5465 5.4) re-reads the list
        await self.pubsub.publish(user_channel(user_id), Nudge(created.id))
        return created

    async def delete(self, user_id: str, path: str) -> None:
        """Delete a mailbox with its messages. INBOX and special-use mailboxes are protected (NotPermitted).
        Sessions that selected it are told at once (a ``gone`` nudge)."""
        mailbox = await self.get(user_id, path)
        if mailbox.path == "INBOX" or mailbox.special_use:
            raise NotPermitted("INBOX and special-use mailboxes cannot be deleted")
        await self.store.delete_mailbox(mailbox.id)
        await self.pubsub.publish(user_channel(user_id), Nudge(mailbox.id, gone=True))

    async def rename(self, user_id: str, old: str, new: str) -> list[Mailbox]:
        """Rename a mailbox with its inferiors (they keep UIDVALIDITY and messages); INBOX cannot be renamed or
        be the new name (NotPermitted); superior levels of the new name are created. Sessions that selected a
        renamed mailbox are told."""
        mailbox = await self.get(user_id, old)
        new = normalize_path(new)
        if mailbox.path == "INBOX" or new == "INBOX":
            raise NotPermitted("INBOX cannot be renamed")
        if new == mailbox.path or new.startswith(mailbox.path + SEPARATOR):
            raise InvalidInput("a mailbox cannot be renamed into itself", "path")
        renamed = await self.store.rename_mailbox(mailbox.id, new)
        for parent in parents(new):
            try:
                await self.store.create_mailbox(user_id, MailboxSpec(parent, subscribed=False))
            except AlreadyExists:
                pass
        for m in renamed:
            await self.pubsub.publish(user_channel(user_id), Nudge(m.id, gone=True))
        return renamed

    async def subscribe(self, user_id: str, path: str) -> None:
        """Subscribe an existing mailbox (NoSuchMailbox otherwise: RFC 3501 6.3.6 lets a server check)."""
        mailbox = await self.get(user_id, path)
        await self.store.set_subscribed(user_id, mailbox.path, True)
        await self.pubsub.publish(user_channel(user_id), Nudge(SUBSCRIPTIONS))

    async def unsubscribe(self, user_id: str, path: str) -> None:
        """Unsubscribe any subscribed name, so that subscriptions outliving their mailbox can be removed;
        NotFound when the name is not subscribed."""
        path = normalize_path(path)
        if not await self.store.set_subscribed(user_id, path, False):
            raise NotFound(f"{path} is not subscribed")
        await self.pubsub.publish(user_channel(user_id), Nudge(SUBSCRIPTIONS))

    async def hierarchy(self, user_id: str, *, with_subscriptions: bool = True) -> Hierarchy:
        """The user's mailboxes, the levels that lead to mailboxes but do not exist themselves (a deleted
        parent), and subscribed names whose mailbox is gone, sorted by path."""
        mailboxes = await self.store.list_mailboxes(user_id)
        subs = frozenset(await self.store.list_subscriptions(user_id)) if with_subscriptions else frozenset()
        paths = {m.path for m in mailboxes}
        with_children = {p for path in paths for p in parents(path)}
        entries = [HierarchyEntry(m.path, m, m.path in subs or m.subscribed, m.path in with_children)
                   for m in mailboxes]
        entries += [HierarchyEntry(p, None, p in subs, True, level=True) for p in sorted(with_children - paths)]
        entries += [HierarchyEntry(p, None, True, False) for p in sorted(subs - paths - with_children)]
        return Hierarchy(entries, subs)

    async def status(self, mailbox: Mailbox, *, first_unseen: bool = True) -> MailboxStatus:
        """Counts, \\Recent, UIDNEXT, UIDVALIDITY and HIGHESTMODSEQ from one store call and one snapshot; without
        ``first_unseen`` (IMAP STATUS does not report it) nothing depends on the mailbox's size."""
        return await self.store.mailbox_status(mailbox.id, first_unseen=first_unseen)

    async def create_with_use(self, user_id: str, path: str, uses: tuple[str, ...]) -> Mailbox:
        """Create ``path`` with a special use (RFC 6154 CREATE-SPECIAL-USE), WildDuck's rule: one use per mailbox
        and one mailbox per use, among :data:`CREATABLE_USES`. Raises UnsupportedUse for a use outside them,
        for several uses, or for a use another mailbox of the user has; otherwise as :meth:`create`.

        Two creates racing for the same use can both succeed: the store does not make a use unique.
        """
        if not uses:
            return await self.create(user_id, path)
        wanted = {_USE_NAMES.get(u.lower(), u) for u in uses}
        if len(wanted) > 1:
            raise UnsupportedUse("a mailbox has at most one special use")
        use = wanted.pop()
        if use not in CREATABLE_USES:
            raise UnsupportedUse(f"special use {use[:40]} is not supported")
        holder = await self.special(user_id, use)
        if holder is not None:
            raise UnsupportedUse(f"{holder.path} already has the special use {use}")
        return await self.create(user_id, path, special_use=use)


#: the special uses a mailbox can be created with (RFC 6154 2; \All and \Flagged would be virtual mailboxes)
CREATABLE_USES = ("\\Archive", "\\Drafts", "\\Junk", "\\Sent", "\\Trash")
_USE_NAMES = {u.lower(): u for u in CREATABLE_USES}


class UnsupportedUse(InvalidInput):
    """A special use that cannot be given to a new mailbox: unknown, virtual, several at once, or taken."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "special_use")
