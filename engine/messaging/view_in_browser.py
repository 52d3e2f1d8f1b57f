"""View in browser (Dittofeed §5.4): the rendered HTML of a sent email kept in blob storage at
`emails/<workspaceId>/<messageId>/body.html`, and the check of the link's hash.

The hash is links.view_in_browser_hash keyed by the server's SECRET_KEY (as upstream); whoever builds a
RenderContext for a send puts that key under links.VIEW_IN_BROWSER_SECRET_NAME so the
`{% view_in_browser_url %}` tag signs what this module verifies.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from engine.blob_storage import BlobStore
from engine.messaging.links import view_in_browser_hash

EMAIL_BODY_CONTENT_TYPE = "text/html; charset=utf-8"


def email_body_key(workspace_id: str, message_id: str) -> str:
    return f"emails/{workspace_id}/{message_id}/body.html"


def store_email_body(blob_store: BlobStore, workspace_id: str, message_id: str, html: str) -> None:
    """Keep a sent email's HTML for its view-in-browser link."""
    blob_store.put(email_body_key(workspace_id, message_id), html.encode("utf-8"), EMAIL_BODY_CONTENT_TYPE)


def load_email_body(blob_store: BlobStore, workspace_id: str, message_id: str) -> bytes | None:
    """The stored HTML (UTF-8), or None if no email of that id was stored for the workspace."""
    return blob_store.get(email_body_key(workspace_id, message_id))


def is_valid_view_hash(workspace_id: str, message_id: str, given: str, secrets: Iterable[str]) -> bool:
    """True when `given` is the link hash of (workspace, message) under one of `secrets` (the current key
    first, then retired ones still honoured). Compared in constant time, as bytes so that any text a
    client sends is comparable."""
    given_bytes = given.encode("utf-8", "surrogatepass")
    valid = False
    for secret in secrets:
        if not secret:
            continue
        expected = view_in_browser_hash(workspace_id=workspace_id, message_id=message_id, secret=secret)
        # No early exit: every key is tried whatever matched, so timing says nothing about which.
        valid |= hmac.compare_digest(expected.encode(), given_bytes)
    return valid
