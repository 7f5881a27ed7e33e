"""Reading the fields of a request body, each with an error that names the field and what it must be."""

from __future__ import annotations

import json
from typing import Any

from .errors import ApiError


def parse_body(raw: bytes) -> dict[str, Any]:
    """The JSON object of a request body; a 422 for malformed JSON or a body that is not an object."""
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ApiError("Validation", f"the request body is not valid JSON: {e}") from None
    if not isinstance(body, dict):
        raise ApiError("Validation", f"the request body must be a JSON object, got {_kind(body)}")
    return body


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def required(body: dict[str, Any], name: str) -> Any:
    if name not in body or body[name] is None:
        raise ApiError("Validation", f"missing field `{name}`")
    return body[name]


def flag(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ApiError("Validation", f"`{name}` must be true or false, got {_kind(value)}")
    return value


def integer(body: dict[str, Any], name: str, default: int | None, low: int = 1, high: int | None = None) -> int | None:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool):
        raise ApiError("Validation", f"`{name}` must be an integer, got {_kind(value)}")
    if value < low or (high is not None and value > high):
        bound = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise ApiError("Validation", f"`{name}`={value} must be {bound}")
    return value


def text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise ApiError("Validation", f"`{name}` must be a string, got {_kind(value)}")
    if not value.strip():
        raise ApiError("Empty", f"`{name}` is an empty string; give it some text")
    return value


def choice(body: dict[str, Any], name: str, choices: tuple[str, ...], default: str) -> str:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, str) or value.lower() not in choices:
        raise ApiError("Validation", f"`{name}` must be one of {', '.join(choices)}, got {json.dumps(value)[:60]}")
    return value.lower()


def batch(items: list[Any], name: str, max_size: int) -> None:
    """A 400 for an empty list, a 413 (TEI's batch size error) for one over `max_size`."""
    if not items:
        raise ApiError("Empty", f"`{name}` cannot be empty")
    if len(items) > max_size:
        raise ApiError("Validation", f"`{name}`: batch size {len(items)} > maximum allowed batch size {max_size} "
                                     "(--max-client-batch-size); split the inputs over several requests",
                       status=413)


def text_list(value: Any, name: str, max_size: int) -> list[str]:
    """`value` checked as a non-empty array of at most `max_size` texts; errors name `name`."""
    if not isinstance(value, list):
        raise ApiError("Validation", f"`{name}` must be an array of strings, got {_kind(value)}")
    batch(value, name, max_size)
    return [text(v, f"{name}[{i}]") for i, v in enumerate(value)]


def texts(body: dict[str, Any], name: str, max_size: int) -> tuple[list[str], bool]:
    """`body[name]` as a list of texts, and whether it was a single string."""
    value = required(body, name)
    if isinstance(value, str):
        return [text(value, name)], True
    if not isinstance(value, list):
        raise ApiError("Validation", f"`{name}` must be a string or an array of strings, got {_kind(value)}")
    return text_list(value, name, max_size), False


def token_ids(value: Any, name: str, vocab: int) -> list[int]:
    """`value` checked as a non-empty array of token ids below `vocab`."""
    if not isinstance(value, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in value):
        raise ApiError("Validation", f"`{name}` must be a string or an array of token ids (integers)")
    if not value:
        raise ApiError("Empty", f"`{name}` is an empty array of token ids; give it some tokens")
    bad = [x for x in value if not 0 <= x < vocab]
    if bad:
        raise ApiError("Validation", f"`{name}` holds {bad[0]}, which is no token id (0 to {vocab - 1})")
    return value


def inputs(body: dict[str, Any], name: str, max_size: int, vocab: int) -> list[str | list[int]]:
    """`body[name]` as TEI's and OpenAI's embedding inputs: a text, an array of token ids, or an array of texts
    and arrays of token ids."""
    value = required(body, name)
    if isinstance(value, str):
        return [text(value, name)]
    if not isinstance(value, list):
        raise ApiError("Validation", f"`{name}` must be a string, an array of token ids or an array of strings and "
                                     f"token-id arrays, got {_kind(value)}")
    if value and all(isinstance(x, int) and not isinstance(x, bool) for x in value):
        return [token_ids(value, name, vocab)]
    batch(value, name, max_size)
    return [text(v, f"{name}[{i}]") if isinstance(v, str) else token_ids(v, f"{name}[{i}]", vocab)
            for i, v in enumerate(value)]


DIRECTIONS = ("right", "left")


def truncation(body: dict[str, Any], auto_truncate: bool, where: dict[str, Any] | None = None,
               directions: tuple[str, ...] = ("right",)) -> bool:
    """`truncate` (default: the server's --auto-truncate), after checking `truncation_direction` is one of
    `directions` (TEI's Left / Right, in any case)."""
    where = body if where is None else where
    truncate = flag(where, "truncate", auto_truncate)
    direction(where, directions)
    return truncate


def direction(where: dict[str, Any], directions: tuple[str, ...] = DIRECTIONS) -> str:
    """`truncation_direction`: "right" (the default: keep the start of the text) or "left" (keep its end)."""
    return choice(where, "truncation_direction", directions, "right")
