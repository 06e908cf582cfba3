"""Runs waiting for an operator, with their task tokens, in a DynamoDB table (``settings.state_table``).

Table layout (the CDK stack creates it; ``table_definition`` gives the same for tests)::

    pk (partition key, S)   "waiting#{run_id}"
    kind (S)                "waiting"            the partition key of the index "by-kind"
    waiting_since (S)       ISO-8601 UTC         the sort key of "by-kind": oldest first
    issue_number (N)
    run (S)                 the WaitingRun as JSON

A waiting run holds the workflow state it waits in, at most Step Functions' 256 KiB, so an item
stays under DynamoDB's 400 KB limit. Reads are strongly consistent where DynamoDB allows it
(``get``); the index is eventually consistent, so a run saved a moment ago may take up to a
second to appear in ``list``.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from pydantic import ValidationError

from mcp_server.backends.aws.clients import aws_client, translated
from mcp_server.backends.base import WaitingRunStore
from mcp_server.core.models import WaitingRun
from mcp_server.errors import MlopsError, NotFoundError
from mcp_server.settings import Settings

KIND = "waiting"
INDEX = "by-kind"


def table_definition(name: str) -> dict[str, Any]:
    """Return the ``CreateTable`` arguments of the state table (on-demand capacity)."""
    return {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "kind", "AttributeType": "S"},
            {"AttributeName": "waiting_since", "AttributeType": "S"},
        ],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": INDEX,
                "KeySchema": [
                    {"AttributeName": "kind", "KeyType": "HASH"},
                    {"AttributeName": "waiting_since", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    }


class DynamoDbWaitingRunStore(WaitingRunStore):
    """Waiting runs in the DynamoDB table ``settings.state_table``.

    Args:
        settings: ``state_table``, ``aws_region`` and ``aws_endpoint_url``.
        dynamodb_client: a boto3 DynamoDB client to use instead of building one.

    Raises:
        MlopsError: no table is configured (``MLOPS_STATE_TABLE``).
    """

    def __init__(self, settings: Settings, dynamodb_client: Any = None) -> None:
        if not settings.state_table:
            raise MlopsError(
                "AWS mode keeps waiting runs in DynamoDB: set MLOPS_STATE_TABLE to the stack's table name"
            )
        self._table = settings.state_table
        self._client = dynamodb_client or aws_client(settings, "dynamodb")

    def save(self, run: WaitingRun) -> WaitingRun:
        """Store (or replace) the waiting run of ``run.run_id``.

        Raises:
            MlopsError: DynamoDB refused the item (a missing table or permission, an item over
                400 KB); TransientError when it throttled or could not be reached.
        """
        item = {
            "pk": {"S": _key(run.run_id)},
            "kind": {"S": KIND},
            "waiting_since": {"S": run.waiting_since},
            "issue_number": {"N": str(run.issue_number)},
            "run": {"S": run.model_dump_json()},
        }
        with self._calling(f"store waiting run {run.run_id}"):
            self._client.put_item(TableName=self._table, Item=item)
        return run

    def get(self, run_id: str) -> WaitingRun:
        """Return the waiting run (a strongly consistent read).

        Raises:
            NotFoundError: no run of that id is waiting.
            MlopsError: the item cannot be read or is not a waiting run.
        """
        with self._calling(f"read waiting run {run_id}"):
            answer = self._client.get_item(
                TableName=self._table, Key={"pk": {"S": _key(run_id)}}, ConsistentRead=True
            )
        if "Item" not in answer:
            raise NotFoundError(f"no run {run_id!r} is waiting for an operator")
        return _run(answer["Item"])

    def list(self, issue_number: int | None = None) -> list[WaitingRun]:
        """Return the waiting runs (of one issue when given), oldest first.

        Raises:
            MlopsError: the index cannot be queried, or an item is not a waiting run.
        """
        arguments: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": INDEX,
            "KeyConditionExpression": "kind = :kind",
            "ExpressionAttributeValues": {":kind": {"S": KIND}},
            "ScanIndexForward": True,
        }
        if issue_number is not None:
            arguments["FilterExpression"] = "issue_number = :issue"
            arguments["ExpressionAttributeValues"][":issue"] = {"N": str(issue_number)}
        with self._calling("list waiting runs"):
            pages = self._client.get_paginator("query").paginate(**arguments)
            return [_run(item) for page in pages for item in page.get("Items", [])]

    def remove(self, run_id: str) -> bool:
        """Forget a waiting run; True when it was there.

        Raises:
            MlopsError: DynamoDB refused the delete.
        """
        with self._calling(f"remove waiting run {run_id}"):
            answer = self._client.delete_item(
                TableName=self._table, Key={"pk": {"S": _key(run_id)}}, ReturnValues="ALL_OLD"
            )
        return bool(answer.get("Attributes"))

    def _calling(self, what: str) -> contextlib.AbstractContextManager[None]:
        return translated(f"{what} in table {self._table}", "DynamoDB", MlopsError)


def _key(run_id: str) -> str:
    if not run_id or len(run_id) > 1000:
        raise NotFoundError(f"invalid run id {run_id[:80]!r}")
    return f"{KIND}#{run_id}"


def _run(item: dict[str, Any]) -> WaitingRun:
    try:
        return WaitingRun.model_validate(json.loads(item["run"]["S"]))
    except (KeyError, TypeError, ValueError, ValidationError) as err:
        raise MlopsError(f"item {item.get('pk', {}).get('S', '?')!r} is not a waiting run: {err}") from err
