"""Bulk contact import in one request: JSON lines or CSV, upserted by email, set-based.

engine.store.contact_rows parses and validates the file (off the event loop); the valid rows are
staged with COPY into a temporary table and merged into contacts, tags and contact_tags by
set-based statements in one transaction. A rejected row writes nothing, and neither does a
file of rejected rows. Imports only add: an empty name keeps the stored one, fields merge key
by key, tags are added and never removed.
"""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import msgspec

from engine.domain.errors import UnsupportedMediaType, ValidationError
from engine.infra.queries import Q
from engine.store.contact_models import ImportResult, TagNames, unique_names
from engine.store.contact_rows import HELP, Format, Parsed, parse

FORMATS: dict[str, Format] = {
    "application/x-ndjson": "jsonl",
    "application/ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/x-jsonl": "jsonl",
    "application/jsonlines": "jsonl",
    "application/x-jsonlines": "jsonl",
    "text/csv": "csv",
    "application/csv": "csv",
}
STAGE_COLUMNS = ("seq", "email", "name", "fields", "tags")


def format_of(content_type: str) -> Format:
    """The import format a Content-Type names, or UnsupportedMediaType."""
    found = FORMATS.get(content_type.split(";", 1)[0].strip().lower())
    if found is None:
        raise UnsupportedMediaType(f"import accepts {', '.join(FORMATS)}, not {content_type or 'no Content-Type'!r}",
                                   field="Content-Type")
    return found


def parse_tag_list(text: str | None, field_name: str = "tags") -> list[str]:
    """A comma-separated list of tag names (`?tags=a,b`), validated."""
    names = [n.strip() for n in (text or "").split(",") if n.strip()]
    try:
        return unique_names(msgspec.convert(names, TagNames))
    except msgspec.ValidationError as exc:
        raise ValidationError(f"{field_name}: {HELP['tags']}", field=field_name) from exc


async def write(pool: asyncpg.Pool, user_id: uuid.UUID, parsed: Parsed) -> tuple[int, int, int]:
    """Merge the parsed rows into the user's contacts; return (imported, updated, unchanged)."""
    if not parsed.winners:
        return 0, 0, 0
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(Q["contacts.import_lock"], user_id)
        await conn.execute(Q["contacts.import_settings"])
        await conn.execute(Q["contacts.import_temp"])
        await conn.copy_records_to_table("contact_import_rows", records=parsed.winners.values(),
                                         columns=STAGE_COLUMNS)
        # Statistics, so the merge is planned for 100k rows rather than the default guess.
        await conn.execute(Q["contacts.import_analyze"])
        # The distinct tag names are few: create the missing ones from the parser's list, not
        # by unnesting every row's tags in SQL once more.
        await conn.execute(Q["tags.ensure"], user_id, parsed.tag_names)
        counts = await conn.fetchrow(Q["contacts.import_merge"], user_id)
        if parsed.tag_names:
            await conn.execute(Q["contacts.import_links"], user_id)
    imported, existing = int(counts["imported"]), int(counts["matched"]) - int(counts["imported"])
    return imported, existing, existing - int(counts["changed"])


async def import_contacts(pool: asyncpg.Pool, user_id: uuid.UUID, raw: bytes, fmt: Format,
                          extra_tags: list[str] | None = None) -> ImportResult:
    """Parse `raw`, write its valid rows, and report what happened to every row."""
    # Parsing 100k rows is a second or so of CPU: in a thread, so the event loop keeps serving
    # other requests (the GIL is handed over every few milliseconds).
    parsed = await asyncio.to_thread(parse, raw, fmt, extra_tags)
    imported, updated, unchanged = await write(pool, user_id, parsed)
    return ImportResult(
        rows=parsed.rows,
        imported=imported,
        updated=updated,
        unchanged=unchanged,
        rejected=parsed.rejected,
        duplicates=parsed.valid - imported - updated,
        errors=parsed.errors,
        errors_truncated=parsed.rejected > len(parsed.errors),
    )
