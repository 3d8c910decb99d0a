"""A message's preview (IMAP PREVIEW, RFC 8970): up to 256 characters of its first text, decoded, white space
collapsed.

The text is what the webmail view reads (``rendering.parse``: transfer encodings and charsets undone, format=flowed
joined, inline text bodies only, an encapsulated message walked into): the first non-empty text/plain body, else
the first HTML body converted to text. Quoted lines and signatures are kept (RFC 8970 3 leaves them to the
server). A message without text has no preview (None). Only the blobs of the text bodies cut out of the skeleton
are read, one blob read for a batch, and previews are kept per process by stored message id (a stored message
never changes)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from wildduck.domain import rendering
from wildduck.domain.messages import MessageService
from wildduck.model import MessageRecord
from wildduck.protocols.mime import text as mimetext

#: the most characters a preview has (RFC 8970 3.1)
PREVIEW_LENGTH = 256
#: previews kept per process (a few hundred bytes each)
CACHE_ENTRIES = 20_000


def preview_text(source: rendering.Source) -> str | None:
    """The preview of a message whose text bodies ``source`` holds (see the module docstring)."""
    parsed = rendering.parse(source)
    text = next((t for t in parsed.text if t.strip()), None)
    if text is None:
        markup = next((h for h in parsed.html if h.strip()), None)
        text = mimetext.html_to_text(markup) if markup is not None else None
    collapsed = " ".join(text.split())[:PREVIEW_LENGTH] if text is not None else ""
    return collapsed or None


class PreviewCache:
    """Previews by stored message id, the least recently used dropped first beyond ``max_entries``."""

    def __init__(self, max_entries: int = CACHE_ENTRIES) -> None:
        self.max_entries = max_entries
        self._kept: OrderedDict[str, str | None] = OrderedDict()

    def get(self, message_id: str) -> tuple[bool, str | None]:
        """(found, preview)."""
        if message_id not in self._kept:
            return False, None
        self._kept.move_to_end(message_id)
        return True, self._kept[message_id]

    def put(self, message_id: str, preview: str | None) -> None:
        self._kept[message_id] = preview
        self._kept.move_to_end(message_id)
        while len(self._kept) > self.max_entries:
            self._kept.popitem(last=False)


#: the previews of this process
CACHE = PreviewCache()


async def previews(messages: MessageService, records: Sequence[MessageRecord], *,
                   cache: PreviewCache = CACHE) -> dict[str, str | None]:
    """The previews of these records (read with content), by record id: from ``cache``, else computed (the blobs
    of the text bodies they need read in one call)."""
    out: dict[str, str | None] = {}
    missing: list[rendering.Source] = []
    for record in records:
        found, preview = cache.get(record.id)
        if found:
            out[record.id] = preview
        else:
            missing.append(rendering.Source(record))
    if missing:
        needed = set().union(*(rendering.text_blobs(s) for s in missing))
        blobs = await messages.blobs.get_blobs(needed) if needed else {}
        for source in missing:
            preview = preview_text(rendering.Source(source.record, blobs))
            cache.put(source.record.id, preview)
            out[source.record.id] = preview
    return out
