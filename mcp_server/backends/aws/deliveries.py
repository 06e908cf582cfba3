"""Webhook deliveries in the DynamoDB state table (``settings.state_table``), beside waiting runs.

Item layout (the table of ``aws.waiting``; the ``by-kind`` index lists them oldest first)::

    pk             "delivery#{delivery_id}"
    kind           "delivery"
    waiting_since  the delivery's received_at (the index's sort key)
    status         received | processing | done
    lease_until    epoch seconds until which a ``processing`` delivery is held
    version        incremented by every change (optimistic concurrency)
    delivery       the Delivery as JSON

``claim`` is a conditional put (``attribute_not_exists(pk)``): of two receivers of one id, one
wins, even across Lambda instances. A function has no process to check for life, so a taker
holds a delivery for a lease (``LEASE_S``, Lambda's longest run); a delivery whose lease ran out
is taken again, as the local store takes one whose runtime died. Every change is a put
conditional on the version read, retried on a conflict.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

from pydantic import ValidationError

from mcp_server.backends.aws.clients import aws_client, translated
from mcp_server.backends.base import DeliveryStore
from mcp_server.core.models import Delivery
from mcp_server.errors import MlopsError, NotFoundError
from mcp_server.settings import Settings

KIND = "delivery"
INDEX = "by-kind"
#: Seconds a taker holds a delivery: Lambda's longest invocation (15 minutes).
LEASE_S = 900
#: Tries of a change that met a concurrent one.
CONFLICT_TRIES = 5


class DynamoDbDeliveryStore(DeliveryStore):
    """Deliveries in the DynamoDB table ``settings.state_table``.

    Args:
        settings: ``state_table``, ``aws_region`` and ``aws_endpoint_url``.
        dynamodb_client: a boto3 DynamoDB client to use instead of building one.
        clock: seconds since the epoch (tests move it to expire leases).

    Raises:
        MlopsError: no table is configured (``MLOPS_STATE_TABLE``).
    """

    def __init__(self, settings: Settings, dynamodb_client: Any = None, clock: Any = time.time) -> None:
        if not settings.state_table:
            raise MlopsError(
                "AWS mode keeps webhook deliveries in DynamoDB: set MLOPS_STATE_TABLE to the stack's "
                "table name"
            )
        self._table = settings.state_table
        self._client = dynamodb_client or aws_client(settings, "dynamodb")
        self._clock = clock

    def claim(self, delivery: Delivery) -> bool:
        """Store a new delivery; False when its id was claimed before (a redelivery).

        Raises:
            MlopsError: DynamoDB refused the write; TransientError when it throttled.
        """
        item = self._item(delivery, version=1)
        with self._calling(f"claim delivery {delivery.delivery_id}"):
            try:
                self._client.put_item(
                    TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(pk)"
                )
            except self._client.exceptions.ConditionalCheckFailedException:
                return False
        return True

    def take(self, delivery_id: str, runtime_id: str) -> Delivery | None:
        """Hold a received delivery (or one whose lease ran out) for ``runtime_id``; None otherwise."""
        for _ in range(CONFLICT_TRIES):
            found = self._read(delivery_id)
            if found is None:
                return None
            delivery, item = found
            leased = delivery.status == "processing" and float(item["lease_until"]["N"]) > self._clock()
            if delivery.status == "done" or leased:
                return None
            taken = delivery.model_copy(update={"status": "processing", "runtime_id": runtime_id})
            if self._replace(taken, item):
                return taken
        return None

    def release(self, delivery_id: str, outcome: dict[str, object]) -> Delivery:
        """Give a taken delivery back (status ``received``) for a later try, counting the try.

        Raises:
            NotFoundError: no delivery has that id.
            MlopsError: the change kept meeting concurrent ones.
        """
        return self._change(
            delivery_id,
            lambda d: d.model_copy(
                update={
                    "status": "received",
                    "runtime_id": None,
                    "outcome": outcome,
                    "attempts": d.attempts + 1,
                }
            ),
        )

    def finish(self, delivery_id: str, outcome: dict[str, object]) -> Delivery:
        """Record the outcome (status ``done``).

        Raises:
            NotFoundError: no delivery has that id.
            MlopsError: the change kept meeting concurrent ones.
        """
        return self._change(
            delivery_id,
            lambda d: d.model_copy(update={"status": "done", "outcome": outcome, "attempts": d.attempts + 1}),
        )

    def get(self, delivery_id: str) -> Delivery:
        """Return the delivery (a strongly consistent read).

        Raises:
            NotFoundError: no delivery has that id.
        """
        found = self._read(delivery_id)
        if found is None:
            raise NotFoundError(f"no delivery {delivery_id!r} was received")
        return found[0]

    def pending(self) -> list[str]:
        """Ids of deliveries received and not done, or whose lease ran out, oldest first."""
        arguments = {
            "TableName": self._table,
            "IndexName": INDEX,
            "KeyConditionExpression": "kind = :kind",
            "FilterExpression": "#status = :received OR (#status = :processing AND lease_until < :now)",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {
                ":kind": {"S": KIND},
                ":received": {"S": "received"},
                ":processing": {"S": "processing"},
                ":now": {"N": repr(self._clock())},
            },
        }
        with self._calling("list pending deliveries"):
            pages = self._client.get_paginator("query").paginate(**arguments)
            return [
                json.loads(item["delivery"]["S"])["delivery_id"] for page in pages for item in page["Items"]
            ]

    # -----------------------------------------------------------------------------------------

    def _item(self, delivery: Delivery, version: int) -> dict[str, Any]:
        lease = self._clock() + LEASE_S if delivery.status == "processing" else 0
        return {
            "pk": {"S": _key(delivery.delivery_id)},
            "kind": {"S": KIND},
            "waiting_since": {"S": delivery.received_at},
            "status": {"S": delivery.status},
            "lease_until": {"N": repr(lease)},
            "version": {"N": str(version)},
            "delivery": {"S": delivery.model_dump_json()},
        }

    def _read(self, delivery_id: str) -> tuple[Delivery, dict[str, Any]] | None:
        with self._calling(f"read delivery {delivery_id}"):
            answer = self._client.get_item(
                TableName=self._table, Key={"pk": {"S": _key(delivery_id)}}, ConsistentRead=True
            )
        item = answer.get("Item")
        if item is None:
            return None
        try:
            return Delivery.model_validate_json(item["delivery"]["S"]), item
        except (KeyError, ValueError, ValidationError) as err:
            raise MlopsError(f"item {_key(delivery_id)!r} is not a delivery: {err}") from err

    def _replace(self, delivery: Delivery, item: dict[str, Any]) -> bool:
        """Write ``delivery`` over ``item`` unless someone changed it since; True when written."""
        version = int(item["version"]["N"])
        with self._calling(f"update delivery {delivery.delivery_id}"):
            try:
                self._client.put_item(
                    TableName=self._table,
                    Item=self._item(delivery, version + 1),
                    ConditionExpression="version = :version",
                    ExpressionAttributeValues={":version": {"N": str(version)}},
                )
            except self._client.exceptions.ConditionalCheckFailedException:
                return False
        return True

    def _change(self, delivery_id: str, change: Any) -> Delivery:
        for _ in range(CONFLICT_TRIES):
            found = self._read(delivery_id)
            if found is None:
                raise NotFoundError(f"no delivery {delivery_id!r} was received")
            changed = change(found[0])
            if self._replace(changed, found[1]):
                return changed  # type: ignore[no-any-return]
        raise MlopsError(f"delivery {delivery_id!r} kept changing under {CONFLICT_TRIES} tries; retry")

    def _calling(self, what: str) -> contextlib.AbstractContextManager[None]:
        return translated(f"{what} in table {self._table}", "DynamoDB", MlopsError)


def _key(delivery_id: str) -> str:
    return f"{KIND}#{delivery_id}"
