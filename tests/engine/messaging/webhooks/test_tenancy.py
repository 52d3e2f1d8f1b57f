"""Which workspace's provider secret verifies a webhook: its own, else its parent's, never a sibling's;
and which workspaces a verified request may write to."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from engine.credentials import WorkspaceIneligible
from engine.messaging.webhooks.tenancy import (
    InvalidWebhookSignature,
    MissingWebhookSecret,
    authorize_workspaces,
    can_receive_events,
    find_provider_config,
    provider_configs,
)
from engine.storage.models import Secret, Workspace, WorkspaceStatus, WorkspaceType


class Tree:
    """A parent with two children and a root workspace."""

    def __init__(self, session: Session) -> None:
        parent = Workspace(name="parent", type=WorkspaceType.PARENT)
        session.add(parent)
        session.flush()
        self.parent = parent.id
        children = [
            Workspace(name=name, type=WorkspaceType.CHILD, parent_workspace_id=parent.id)
            for name in ("a", "b")
        ]
        root = Workspace(name="root", type=WorkspaceType.ROOT)
        session.add_all([*children, root])
        session.flush()
        self.child_a, self.child_b = (child.id for child in children)
        self.root = root.id


@pytest.fixture
def session(sessions: sessionmaker[Session]) -> Any:
    with sessions.begin() as session:
        yield session


@pytest.fixture
def tree(session: Session) -> Tree:
    return Tree(session)


def _secret(session: Session, workspace_id: str, key: str | None, name: str = "postmark") -> None:
    config = {"type": "PostMark"} | ({"webhookKey": key} if key is not None else {})
    session.add(Secret(workspace_id=workspace_id, name=name, config_value=config))
    session.flush()


def test_a_workspace_uses_its_own_secret(session: Session, tree: Tree) -> None:
    _secret(session, tree.parent, "parent-key")
    _secret(session, tree.child_a, "own-key")
    assert find_provider_config(session, tree.child_a, "postmark", having="webhookKey") == {
        "type": "PostMark",
        "webhookKey": "own-key",
    }


def test_a_child_without_one_falls_back_to_its_parent(session: Session, tree: Tree) -> None:
    _secret(session, tree.parent, "parent-key")
    assert find_provider_config(session, tree.child_a, "postmark", having="webhookKey") == {
        "type": "PostMark",
        "webhookKey": "parent-key",
    }


def test_a_childs_own_secret_without_the_key_falls_back_too(session: Session, tree: Tree) -> None:
    # Every workspace is bootstrapped with a keyless {"type": ...} row per provider.
    _secret(session, tree.parent, "parent-key")
    _secret(session, tree.child_a, None)
    assert provider_configs(session, tree.child_a, "postmark") == [
        {"type": "PostMark"},
        {"type": "PostMark", "webhookKey": "parent-key"},
    ]
    assert find_provider_config(session, tree.child_a, "postmark", having="webhookKey") == {
        "type": "PostMark",
        "webhookKey": "parent-key",
    }
    assert authorize_workspaces(session, [tree.child_a], "postmark", _verify_with("parent-key")) == [
        tree.child_a
    ]


def test_never_a_siblings_secret_nor_another_providers(session: Session, tree: Tree) -> None:
    _secret(session, tree.child_b, "b-key")
    _secret(session, tree.child_a, "resend-key", name="resend")
    assert find_provider_config(session, tree.child_a, "postmark", having="webhookKey") is None
    assert find_provider_config(session, tree.root, "postmark", having="webhookKey") is None


def test_only_active_non_parent_workspaces_receive_events(session: Session, tree: Tree) -> None:
    assert can_receive_events(session, tree.child_a)
    assert can_receive_events(session, tree.root)
    assert not can_receive_events(session, tree.parent)
    session.get(Workspace, tree.child_b).status = WorkspaceStatus.TOMBSTONED  # type: ignore[union-attr]
    session.flush()
    assert not can_receive_events(session, tree.child_b)
    assert not can_receive_events(session, "00000000-0000-0000-0000-000000000000")


def _verify_with(key: str) -> Any:
    def verify(config: Mapping[str, Any]) -> bool | None:
        return None if "webhookKey" not in config else config["webhookKey"] == key

    return verify


def test_each_named_workspace_is_accepted_only_under_its_own_key(session: Session, tree: Tree) -> None:
    _secret(session, tree.child_a, "a-key")
    _secret(session, tree.child_b, "b-key")
    named = [tree.child_a, tree.child_b, tree.child_a]
    assert authorize_workspaces(session, named, "postmark", _verify_with("a-key")) == [tree.child_a]
    assert authorize_workspaces(session, named, "postmark", _verify_with("b-key")) == [tree.child_b]


def test_a_parents_key_opens_every_child_without_its_own(session: Session, tree: Tree) -> None:
    _secret(session, tree.parent, "parent-key")
    _secret(session, tree.child_b, "b-key")
    named = [tree.child_a, tree.child_b]
    assert authorize_workspaces(session, named, "postmark", _verify_with("parent-key")) == [tree.child_a]


def test_the_refusal_says_how_far_the_request_got(session: Session, tree: Tree) -> None:
    with pytest.raises(MissingWebhookSecret):
        authorize_workspaces(session, [tree.child_a], "postmark", _verify_with("k"))
    _secret(session, tree.parent, "parent-key")
    with pytest.raises(InvalidWebhookSignature):
        authorize_workspaces(session, [tree.child_a], "postmark", _verify_with("forged"))
    # The parent itself verifies, but a Parent workspace cannot receive events.
    with pytest.raises(WorkspaceIneligible):
        authorize_workspaces(session, [tree.parent], "postmark", _verify_with("parent-key"))
