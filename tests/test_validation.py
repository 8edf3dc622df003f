"""msgspec errors turned into the field a 400 names, for every message shape msgspec produces."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
import pytest

from api.validation import convert_query, decode_body, field_of
from engine.domain.errors import ValidationError

Key = Annotated[str, msgspec.Meta(max_length=64)]


class Item(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1)]


class Body(msgspec.Struct, forbid_unknown_fields=True):
    title: str = ""
    fields: dict[Key, int] = {}
    template_ids: list[uuid.UUID] = []
    items: list[Item] = []
    item: Item | None = None
    grid: list[list[int]] = []
    by_key: dict[str, list[int]] = {}


class Query(msgspec.Struct, forbid_unknown_fields=True):
    limit: Annotated[int, msgspec.Meta(ge=1, le=100)] = 10
    labels: dict[Key, str] = {}


def _error(payload: Any) -> msgspec.ValidationError:
    with pytest.raises(msgspec.ValidationError) as info:
        msgspec.json.decode(msgspec.json.encode(payload), type=Body)
    return info.value


@pytest.mark.parametrize(("payload", "field"), [
    # A bad key names the object holding it: msgspec does not repeat the key.
    ({"fields": {"k" * 65: 1}}, "fields"),
    ({"fields": {"a": "x"}}, "fields[...]"),
    ({"fields": []}, "fields"),
    ({"template_ids": [str(uuid.uuid4())] * 3 + ["nope"]}, "template_ids[3]"),
    ({"template_ids": [7]}, "template_ids[0]"),
    ({"items": [{"name": "a"}, {"name": ""}]}, "items[1].name"),
    ({"items": [{"name": "a"}, {}]}, "items[1].name"),
    ({"items": [{"name": "a", "colour": "red"}]}, "items[0].colour"),
    ({"item": {}}, "item.name"),
    ({"item": {"name": "a", "extra": 1}}, "item.extra"),
    ({"grid": [[1], [2, "x"]]}, "grid[1][1]"),
    ({"by_key": {"k": [1, "x"]}}, "by_key[...][1]"),
    ({"title": 5}, "title"),
    ({"colour": "red"}, "colour"),
    ([], None),
])
def test_field_of_each_message_shape(payload: Any, field: str | None) -> None:
    assert field_of(_error(payload)) == field


def test_a_key_error_at_the_top_names_no_field() -> None:
    with pytest.raises(msgspec.ValidationError) as info:
        msgspec.json.decode(b'{"' + b"k" * 65 + b'": 1}', type=dict[Key, int])
    assert field_of(info.value) is None


def test_decode_body_names_the_object_of_a_bad_key() -> None:
    with pytest.raises(ValidationError) as info:
        decode_body(b'{"fields": {"' + b"k" * 65 + b'": 1}}', Body)
    assert info.value.field == "fields"
    assert info.value.message == "fields: Expected `str` of length <= 64 (an object key)"


def test_decode_body_messages_drop_the_location() -> None:
    with pytest.raises(ValidationError) as info:
        decode_body(b'{"template_ids": ["a", "b"]}', Body)
    assert (info.value.field, info.value.message) == ("template_ids[0]", "template_ids[0]: Invalid UUID")
    with pytest.raises(ValidationError) as info:
        decode_body(b"[]", Body)
    assert (info.value.field, info.value.message) == ("body", "body: Expected `object`, got `array`")
    with pytest.raises(ValidationError) as info:
        decode_body(b"{oops", Body)
    assert info.value.field == "body" and info.value.message.startswith("malformed JSON")
    with pytest.raises(ValidationError) as info:
        decode_body(b"  ", Body)
    assert info.value.field == "body"


def test_convert_query_fields() -> None:
    assert convert_query({"limit": "5"}, Query).limit == 5
    with pytest.raises(ValidationError) as info:
        convert_query({"limit": "500"}, Query)
    assert (info.value.field, info.value.message) == ("limit", "limit: Expected `int` <= 100")
    with pytest.raises(ValidationError) as info:
        convert_query({"labels": {"k" * 65: "x"}}, Query)
    assert info.value.field == "labels"
    with pytest.raises(ValidationError) as info:
        convert_query({"colour": "red"}, Query)
    assert info.value.field == "colour"
