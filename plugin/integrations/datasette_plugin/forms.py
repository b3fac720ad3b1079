"""Request fields for the search page and API: query string, urlencoded, multipart or JSON.

Datasette 0.65 parses only urlencoded bodies, and image or ``.npy`` uploads arrive as
multipart/form-data, which the standard library's email parser splits byte-exactly. Bodies
are read with a size limit so that an upload cannot exhaust memory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from email.utils import collapse_rfc2231_value
from typing import cast
from urllib.parse import parse_qsl

MAX_BODY = 20 * 1024 * 1024


class BadForm(ValueError):
    """The request body cannot be read; ``str()`` is one line."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass
class Upload:
    filename: str
    data: bytes


@dataclass
class Fields:
    values: dict[str, object] = field(default_factory=dict)  # str, or JSON values from a JSON body
    files: dict[str, Upload] = field(default_factory=dict)

    def text(self, name: str) -> str:
        value = self.values.get(name)
        return "" if value is None else str(value).strip()


async def _read_body(request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BadForm(f"the request is {int(declared):,} bytes; the limit is {limit:,}", 413)
    chunks, size = [], 0
    while True:
        message = await request.receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BadForm(f"the request is larger than the {limit:,}-byte limit", 413)
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def _multipart(content_type: str, body: bytes) -> Fields:
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise BadForm("the multipart/form-data body has no parts (missing boundary?)")
    out = Fields()
    for part in message.iter_parts():
        param = part.get_param("name", header="content-disposition")
        if not param:
            continue
        name = collapse_rfc2231_value(param)  # a plain str, or an RFC 2231 (charset, language, text) triple
        data = cast(bytes, part.get_payload(decode=True) or b"")
        filename = part.get_filename()
        if filename is not None:
            if data:  # an empty file input is sent as a part with no bytes
                out.files[name] = Upload(filename, data)
            continue
        try:
            out.values[name] = data.decode("utf-8")
        except UnicodeDecodeError:
            raise BadForm(f"form field {name!r} is not UTF-8 text") from None
    return out


async def read_fields(request, limit: int = MAX_BODY) -> Fields:
    """Query-string values, overridden by the body's values for a POST."""
    out = Fields(values=dict(parse_qsl(request.query_string, keep_blank_values=True)))
    if request.method != "POST":
        return out
    content_type = request.headers.get("content-type", "")
    kind = content_type.split(";")[0].strip().lower()
    body = await _read_body(request, limit)
    if kind == "multipart/form-data":
        posted = _multipart(content_type, body)
    elif kind == "application/json":
        try:
            data = json.loads(body or b"{}")
        except ValueError as exc:
            raise BadForm(f"the JSON body is not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise BadForm('the JSON body must be an object such as {"vector": [...], "k": 10}')
        posted = Fields(values=data)
    elif kind in ("application/x-www-form-urlencoded", ""):
        try:
            posted = Fields(values=dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True)))
        except UnicodeDecodeError:
            raise BadForm("the form body is not UTF-8 text") from None
    else:
        raise BadForm(f"cannot read a {kind} body; send a form (urlencoded or multipart) or JSON", 415)
    out.values.update(posted.values)
    out.files.update(posted.files)
    return out
