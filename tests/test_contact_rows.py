"""The import parsers as pure functions: line numbers, dedupe, and the edges of the rules."""

from __future__ import annotations

import pytest

from engine.domain.errors import UnsupportedMediaType, ValidationError
from engine.store.contact_import import format_of, parse_tag_list
from engine.store.contact_rows import parse, parse_csv, parse_jsonl


def test_jsonl_rows_dedupe_and_line_numbers() -> None:
    raw = (b'\xef\xbb\xbf{"email": "a@x.io", "name": "First", "tags": ["t", "T"]}\r\n'
           b'\n'
           b'{"email": "b@x.io", "fields": {"note": "nul\\u0000here"}}\n'
           b'{"email": "A@X.IO", "name": "Last"}\n'
           b'{"email": "c@x.io", "fields": {"big": 18446744073709551616}}\n'
           b'{"email": "d@x.io", "fields": {"ok": "\\u0000"}}')
    out = parse_jsonl(raw, ["extra"])
    assert (out.rows, out.valid, out.rejected) == (5, 2, 3)
    assert [(e.row, e.field) for e in out.errors] == [(3, "fields.note"), (5, "fields"), (6, "fields.ok")]
    # The later row with the same email replaced the first, tags and all.
    assert list(out.winners.values()) == [(4, "A@X.IO", "Last", "{}", ["extra"])]


def test_non_ascii_emails_are_left_to_the_database_to_fold() -> None:
    out = parse_jsonl(b'{"email": "\xc3\x84@x.io"}\n{"email": "\xc3\xa4@x.io"}\n{"email": "\xc3\xa4@x.io"}\n')
    assert sorted(r[1] for r in out.winners.values()) == ["Ä@x.io", "ä@x.io"]


def test_csv_records_spanning_lines_keep_their_first_line() -> None:
    raw = ('email,note\n'
           'a@x.io,"one\ntwo\nthree"\n'
           'bad,x\n'
           'c@x.io,"with ""quotes"", and commas"\n').encode()
    out = parse_csv(raw)
    assert [(e.row, e.field) for e in out.errors] == [(5, "email")]
    assert [(r[0], r[3]) for r in out.winners.values()] == [
        (2, '{"note":"one\\ntwo\\nthree"}'), (6, '{"note":"with \\"quotes\\", and commas"}')]


def test_csv_cells_are_checked_like_the_api() -> None:
    raw = ("email,name,tags,x\n"
           f"a@x.io,{'n' * 201},,\n"
           "b@x.io,ok,ok;" + "t" * 65 + ",\n"
           f"c@x.io,ok,,{'v' * 2001}\n"
           "d@x.io,nul\x00,,\n"
           "e@x.io,,,v\x00\n"
           "f@x.io, ,a | b ; c,  \n").encode()
    out = parse(raw, "csv")
    assert [(e.row, e.field) for e in out.errors] == [(2, "name"), (3, "tags"), (4, "fields.x"), (5, "name"),
                                                       (6, "fields.x")]
    assert list(out.winners.values()) == [(7, "f@x.io", "", "{}", ["a", "b", "c"])]
    assert out.tag_names == ["a", "b", "c"]


@pytest.mark.parametrize("header", [b"", b"name\n", b"email,EMAIL\n", b"email,bad-name\n", b"email,name2,Tags,1a\n"])
def test_csv_header_problems_refuse_the_file(header: bytes) -> None:
    with pytest.raises(ValidationError) as info:
        parse_csv(header + b"a@x.io\n")
    assert info.value.field in ("header", "body")


def test_formats_and_tag_lists() -> None:
    assert format_of("text/csv; charset=utf-8") == "csv"
    assert format_of("Application/X-NDJSON") == "jsonl"
    with pytest.raises(UnsupportedMediaType):
        format_of("application/json")
    assert parse_tag_list(" a, B ,,A ") == ["a", "B"]
    assert parse_tag_list(None) == []
    with pytest.raises(ValidationError):
        parse_tag_list("ok,bad|tag")
