"""Reading request input: JSON bodies validated against pydantic models, and the workspaceId rules of
Dittofeed §1.3. Every failure is an `InvalidInput` that names the field, in Fastify's wording style
(`body/batch/2/event must ...`), so a client's mistake is a 400 and never a 500.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile
from starlette.requests import Request

from engine.clickhouse_json import reject_json_constant
from engine.errors import InvalidInput

Model = TypeVar("Model", bound=BaseModel)


async def read_json(request: Request) -> Any:
    """Parse the body as JSON. :raises InvalidInput: empty or malformed."""
    body = await request.body()
    if not body:
        raise InvalidInput("body must be a JSON object", field="body")
    try:
        return json.loads(body, parse_constant=reject_json_constant)
    except (UnicodeDecodeError, ValueError) as error:
        raise InvalidInput(f"body is not valid JSON: {error}", field="body") from None
    except RecursionError:
        raise InvalidInput("body is nested too deeply", field="body") from None


async def read_uploaded_file(request: Request) -> bytes:
    """The first file of a multipart body. :raises InvalidInput: there is none (upstream's wording)."""
    async with request.form() as form:
        for _, value in form.multi_items():
            if isinstance(value, UploadFile):
                return await value.read()
    raise InvalidInput("missing file", field="file")


def validate(model: type[Model], data: Any, *, where: str = "body") -> Model:
    """Validate `data`; the error names the first offending field."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        path = "/".join(str(part) for part in (where, *first["loc"]) if not _is_union_tag(part))
        message = first["msg"].removeprefix("Value error, ")
        raise InvalidInput(f"{path} {message}", field=path) from None


def read_query(request: Request, model: type[Model], *, arrays: frozenset[str] = frozenset()) -> Model:
    """Validate the query string; names in `arrays` may repeat (`event=a&event=b` or `event[]=a`)."""
    data: dict[str, Any] = {}
    for key in request.query_params:
        name = key.removesuffix("[]")
        values = request.query_params.getlist(key)
        data[name] = [*data.get(name, []), *values] if name in arrays else values[-1]
    return validate(model, data, where="querystring")


def resolve_workspace_id(request: Request, body: Any = None) -> str | None:
    """The one workspaceId named by body, query and `df-workspace-id` header, if any.

    :raises InvalidInput: they disagree, or the value is not a UUID.
    """
    candidates = set(request.query_params.getlist("workspaceId"))
    if isinstance(body, dict) and isinstance(body.get("workspaceId"), str):
        candidates.add(body["workspaceId"])
    if "df-workspace-id" in request.headers:
        candidates.add(request.headers["df-workspace-id"])
    if len(candidates) > 1:
        raise InvalidInput("Mismatched workspaceIds in request.", field="workspaceId")
    if not candidates:
        return None
    value = candidates.pop()
    try:
        uuid.UUID(value)
    except ValueError:
        raise InvalidInput("Invalid workspaceId, not a valid UUID.", field="workspaceId") from None
    return value


def _is_union_tag(part: object) -> bool:
    # pydantic puts the matched union member's tag (e.g. "track") in the location; clients never see it.
    return isinstance(part, str) and part in {"identify", "track", "page", "screen", "group"}
