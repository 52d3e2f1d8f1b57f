"""Reading subscription-group CSV uploads (§6.9): who each row names, what it asks for, its traits,
and upstream's typed errors for every way a file can be refused."""

from __future__ import annotations

from typing import Any

import pytest

from engine.messaging.subscription_csv import SubscriptionCsvError, SubscriptionRow, parse_subscription_csv


def test_rows_name_a_user_an_action_and_traits() -> None:
    data = (
        "\ufeffid,email,action,plan\n"
        "u1,ann@example.com,subscribe,pro\n"
        "\n"
        ",bob@example.com,,free\n"
        "u3,,Unsubscribe ,\n"
    ).encode()
    assert parse_subscription_csv(data) == [
        SubscriptionRow("u1", "ann@example.com", True, {"email": "ann@example.com", "plan": "pro"}),
        SubscriptionRow("", "bob@example.com", True, {"email": "bob@example.com", "plan": "free"}),
        SubscriptionRow("u3", "", False, {"email": "", "plan": ""}),
    ]


def test_an_email_column_alone_is_enough() -> None:
    assert parse_subscription_csv(b"email\nann@example.com\n") == [
        SubscriptionRow("", "ann@example.com", True, {"email": "ann@example.com"})
    ]


def _refusal(data: bytes) -> dict[str, Any]:
    with pytest.raises(SubscriptionCsvError) as raised:
        parse_subscription_csv(data)
    assert raised.value.field == "file"
    return raised.value.body


def test_a_file_without_id_or_email_columns_is_missing_headers() -> None:
    assert _refusal(b"name,plan\nann,pro\n") == {
        "type": "MissingHeaders",
        "message": 'csv must have "id" or "email" headers',
    }
    assert _refusal(b"")["type"] == "MissingHeaders"


def test_every_row_naming_no_one_is_listed() -> None:
    body = _refusal(b"id,email,plan\nu1,,pro\n,,free\n\nu3,,\n,,\n")
    assert body == {
        "type": "RowValidationErrors",
        "message": "csv rows contained errors",
        "rowErrors": [
            {"row": 1, "error": 'row must have a non-empty "email" or "id" field'},
            {"row": 3, "error": 'row must have a non-empty "email" or "id" field'},
        ],
    }


def test_an_unknown_action_is_named() -> None:
    body = _refusal(b"id,action\nu1,subscribe\nu2,maybe\nu3,never\n")
    assert body["type"] == "InvalidActionValue" and body["actionValue"] == "maybe"
    assert '"maybe"' in body["message"]


@pytest.mark.parametrize("data", [b"id\n\xff\xfe\n", b'id,email\n"u1,ann@example.com\n', b'id\n"a"b\n'])
def test_unreadable_files_are_parse_errors(data: bytes) -> None:
    body = _refusal(data)
    assert body["type"] == "ParseError" and body["message"].startswith("misformatted file")
