"""The SegmentIO configuration and the verification of Segment deliveries, on SQLite and Postgres."""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from typing import get_args

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from engine import data_sources
from engine.credentials import WorkspaceIneligible
from engine.data_sources import DataSourceType, InvalidSignature, SegmentDelivery, SegmentNotConfigured
from engine.storage.event_schema import EVENT_TYPE
from engine.storage.models import Workspace, WorkspaceStatus, WorkspaceType
from engine.storage.resource_models import SegmentIOConfiguration

BODY = b'{"type":"track","event":"Order Completed","userId":"u1","messageId":"m1","timestamp":"2026-01-01"}'


def _sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def _workspace(sessions: sessionmaker[Session], **fields: object) -> str:
    with sessions.begin() as session:
        workspace = Workspace(name=f"w-{uuid.uuid4()}", **fields)
        session.add(workspace)
        session.flush()
        return workspace.id


def _configure(sessions: sessionmaker[Session], workspace_id: str, secret: str) -> str:
    with sessions.begin() as session:
        return data_sources.upsert_segment_io(session, workspace_id, secret)


def _verify(sessions: sessionmaker[Session], workspace_id: str, body: bytes, signature: str | None) -> None:
    with sessions() as session:
        data_sources.verify_segment_delivery(session, workspace_id, body, signature)


def test_signature_is_segments_hex_hmac_sha1() -> None:
    # The RFC 2104 / Wikipedia HMAC-SHA1 test vector.
    assert (
        data_sources.segment_signature("key", b"The quick brown fox jumps over the lazy dog")
        == "de7c9b85b8b78aa6bc8a7a36f70a90701c9db4d9"
    )


def test_upsert_creates_once_then_replaces_the_secret(sessions: sessionmaker[Session]) -> None:
    workspace_id = _workspace(sessions)
    with sessions() as session:
        assert data_sources.configured_data_sources(session, workspace_id) == []
    first = _configure(sessions, workspace_id, "s1")
    second = _configure(sessions, workspace_id, "s2")
    assert first == second
    with sessions() as session:
        assert data_sources.configured_data_sources(session, workspace_id) == [DataSourceType.SEGMENT_IO]
        assert session.scalars(select(SegmentIOConfiguration.shared_secret)).all() == ["s2"]


def test_delete_removes_and_is_idempotent(sessions: sessionmaker[Session]) -> None:
    workspace_id = _workspace(sessions)
    _configure(sessions, workspace_id, "s1")
    for _ in range(2):
        with sessions.begin() as session:
            data_sources.delete_data_source(session, workspace_id, DataSourceType.SEGMENT_IO)
    with sessions() as session:
        assert data_sources.configured_data_sources(session, workspace_id) == []


def test_one_configuration_per_workspace_and_it_goes_with_the_workspace(
    sessions: sessionmaker[Session],
) -> None:
    workspace_id = _workspace(sessions)
    _configure(sessions, workspace_id, "s1")
    with pytest.raises(IntegrityError), sessions.begin() as session:
        session.add(SegmentIOConfiguration(workspace_id=workspace_id, shared_secret="s2"))
    with sessions.begin() as session:
        session.delete(session.get(Workspace, workspace_id))
    with sessions() as session:
        assert session.scalars(select(SegmentIOConfiguration)).all() == []


def test_configurations_are_per_workspace(sessions: sessionmaker[Session]) -> None:
    a, b = _workspace(sessions), _workspace(sessions)
    _configure(sessions, a, "secret-a")
    _configure(sessions, b, "secret-b")
    _verify(sessions, a, BODY, _sign("secret-a", BODY))
    _verify(sessions, b, BODY, _sign("secret-b", BODY))
    with pytest.raises(InvalidSignature):
        _verify(sessions, b, BODY, _sign("secret-a", BODY))


def test_an_unconfigured_or_unknown_workspace_is_not_configured(sessions: sessionmaker[Session]) -> None:
    workspace_id = _workspace(sessions)
    for target in (workspace_id, "00000000-0000-4000-8000-000000000000"):
        with pytest.raises(SegmentNotConfigured):
            _verify(sessions, target, BODY, _sign("anything", BODY))


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "",
        _sign("wrong", BODY),
        _sign("secret", BODY).upper(),  # upstream compares the exact lowercase hex string
        _sign("secret", BODY + b" "),
        "é" * 40,
    ],
)
def test_bad_signatures_are_refused(sessions: sessionmaker[Session], signature: str | None) -> None:
    workspace_id = _workspace(sessions)
    _configure(sessions, workspace_id, "secret")
    with pytest.raises(InvalidSignature):
        _verify(sessions, workspace_id, BODY, signature)


@pytest.mark.parametrize(
    "fields",
    [
        {"status": WorkspaceStatus.TOMBSTONED},
        {"status": WorkspaceStatus.PAUSED},
        {"type": WorkspaceType.PARENT},
    ],
)
def test_workspaces_that_cannot_receive_events_are_ineligible(
    sessions: sessionmaker[Session], fields: dict[str, object]
) -> None:
    workspace_id = _workspace(sessions, **fields)
    _configure(sessions, workspace_id, "secret")
    with pytest.raises(WorkspaceIneligible):
        _verify(sessions, workspace_id, BODY, _sign("secret", BODY))
    # The signature is checked first: an unsigned caller learns nothing about the workspace.
    with pytest.raises(InvalidSignature):
        _verify(sessions, workspace_id, BODY, _sign("wrong", BODY))


def test_delivery_types_are_exactly_the_event_store_enum() -> None:
    enum_names = set(re.findall(r"'(\w+)' = \d+", EVENT_TYPE))
    assert set(get_args(SegmentDelivery.model_fields["type"].annotation)) == enum_names
