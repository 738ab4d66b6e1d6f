"""The DynamoDB size/unit model against hand-computed cases from AWS's documented rules, and
the item limit and meter over moto."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from benchmarks.dynamodb_model import (
    ITEM_TOO_LARGE,
    MAX_ITEM_BYTES,
    UnitMeter,
    batch_get_units,
    install_item_limit,
    item_size,
    number_size,
    query_units,
    read_units,
    update_write_units,
    value_size,
    write_units,
)


def test_scalar_sizes() -> None:
    # "abc": 3 UTF-8 bytes; "é" is 2 bytes; a name counts its UTF-8 length too.
    assert item_size({"pk": {"S": "abc"}}) == 2 + 3
    assert value_size({"S": "é"}) == 2
    assert item_size({"né": {"BOOL": True}, "x": {"NULL": True}}) == 3 + 1 + 1 + 1
    assert value_size({"B": b"\x00\x01\x02"}) == 3
    # Numbers: 1 byte per 2 significant digits + 1; zeros around do not count.
    assert number_size("123") == 3  # ceil(3/2) + 1
    assert number_size("1234") == 3
    assert number_size("12345") == 4
    assert number_size("1000") == 2  # one significant digit
    assert number_size("0.0012") == 2
    assert number_size("-12") == 3  # + 1 for the sign
    assert number_size("0") == 2


def test_collection_sizes() -> None:
    assert value_size({"L": []}) == 3
    assert value_size({"M": {}}) == 3
    # L: 3 + per element (1 + size): "ab" -> 3, "123" -> 1 + 3
    assert value_size({"L": [{"S": "ab"}, {"N": "123"}]}) == 3 + 3 + 4
    # M: 3 + per element (1 + key + size)
    assert value_size({"M": {"k": {"S": "vv"}}}) == 3 + 1 + 1 + 2
    # Sets: sum of the elements.
    assert value_size({"SS": ["a", "bc", "def"]}) == 6
    assert value_size({"NS": ["1", "12345"]}) == 2 + 4
    assert value_size({"BS": [b"ab", b"c"]}) == 3


def test_read_and_write_units_documented_examples() -> None:
    kb = 1024
    # A 3.5 KB item: 1 strongly consistent read unit, 0.5 eventually consistent.
    assert read_units(int(3.5 * kb), consistent=True) == 1
    assert read_units(int(3.5 * kb)) == 0.5
    # A 10 KB item read strongly: 3 units (12 KB); transactional: 6.
    assert read_units(10 * kb, consistent=True) == 3
    assert read_units(10 * kb, transactional=True) == 6
    # BatchGetItem of a 1.5 KB and a 6.5 KB item: rounded separately, 4 KB + 8 KB = 3 units.
    assert batch_get_units([int(1.5 * kb), int(6.5 * kb)], consistent=True) == 3
    # Query returning those two items: 8 KB in all -> 2 units strongly, 1 eventually.
    assert query_units([int(1.5 * kb), int(6.5 * kb)], consistent=True) == 2
    assert query_units([int(1.5 * kb), int(6.5 * kb)]) == 1
    # Missing items still cost the minimum.
    assert read_units(0) == 0.5 and batch_get_units([0, 0]) == 1
    # Writes: 1 KB units; a 1.5 KB put costs 2; a 500 B item 1; transactional doubles.
    assert write_units(int(1.5 * kb)) == 2 and write_units(500) == 1
    assert write_units(int(1.5 * kb), transactional=True) == 4
    # UpdateItem of one small attribute on a 12 KB item: billed at the 12 KB item.
    assert update_write_units(12 * kb, 12 * kb + 10) == 13
    assert update_write_units(12 * kb, 100) == 12


def make_table(client: Any) -> None:
    client.create_table(
        TableName="t",
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


def fill(client: Any) -> None:
    for pk in ("a", "b", "c"):
        for i in range(5):
            client.put_item(TableName="t", Item=key(pk, f"x{i}") | {"v": {"N": str(i)}})


@pytest.fixture
def db() -> Iterator[Any]:
    keys = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
    )
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        make_table(client)
        yield client
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def key(pk: str, sk: str = "x") -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def big(pk: str, n: int) -> dict[str, Any]:
    """An item of exactly n bytes: pk (2+len) + sk (2+1) + v (1 + rest)."""
    fixed = 2 + len(pk) + 2 + 1 + 1
    return {**key(pk), "v": {"S": "a" * (n - fixed)}}


# moto refuses items above its own count of 405,000 B, so the boundary is tested with a lower
# limit; the default is AWS's 409,600 B.
LIMIT = 100_000


def test_item_limit_put_and_batch(db: Any) -> None:
    install_item_limit(db, LIMIT)
    db.put_item(TableName="t", Item=big("ok", LIMIT))  # exactly at the limit: fine
    assert item_size(big("ok", LIMIT)) == LIMIT
    with pytest.raises(ClientError) as err:
        db.put_item(TableName="t", Item=big("no", LIMIT + 1))
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert err.value.response["Error"]["Message"] == ITEM_TOO_LARGE
    assert "Item" not in db.get_item(TableName="t", Key=key("no"))
    with pytest.raises(ClientError):
        db.batch_write_item(
            RequestItems={
                "t": [
                    {"PutRequest": {"Item": big("b1", 100)}},
                    {"PutRequest": {"Item": big("b2", LIMIT + 5)}},
                ]
            }
        )
    assert "Item" not in db.get_item(TableName="t", Key=key("b1"))  # the batch failed whole


def test_item_limit_default_is_aws(db: Any) -> None:
    install_item_limit(db)
    assert MAX_ITEM_BYTES == 409_600
    with pytest.raises(ClientError) as err:
        db.put_item(TableName="t", Item=big("no", MAX_ITEM_BYTES + 1))
    assert err.value.response["Error"]["Message"] == ITEM_TOO_LARGE


def test_item_limit_update_restores(db: Any) -> None:
    install_item_limit(db, LIMIT)
    db.put_item(TableName="t", Item=big("u", LIMIT - 100))
    db.update_item(  # still fits
        TableName="t",
        Key=key("u"),
        UpdateExpression="SET w = :w",
        ExpressionAttributeValues={":w": {"S": "b" * 50}},
    )
    with pytest.raises(ClientError) as err:
        db.update_item(
            TableName="t",
            Key=key("u"),
            UpdateExpression="ADD s :s",
            ExpressionAttributeValues={":s": {"SS": ["c" * 100]}},
        )
    assert err.value.response["Error"]["Message"] == ITEM_TOO_LARGE
    stored = db.get_item(TableName="t", Key=key("u"))["Item"]
    assert "s" not in stored and stored["w"]["S"] == "b" * 50
    # An update that creates a new item too large: the item is gone again.
    with pytest.raises(ClientError):
        db.update_item(
            TableName="t",
            Key=key("new"),
            UpdateExpression="SET v = :v",
            ExpressionAttributeValues={":v": {"S": "a" * LIMIT}},
        )
    assert "Item" not in db.get_item(TableName="t", Key=key("new"))


def test_meter_reads(db: Any) -> None:
    for i, size in enumerate((1536, 6656, 100)):
        db.put_item(TableName="t", Item=big("q", size) | {"sk": {"S": f"s{i}"}})
    meter = UnitMeter(db)
    db.get_item(TableName="t", Key=key("q", "s1"))  # 6.5 KB eventually consistent: 1 unit
    db.get_item(TableName="t", Key=key("q", "s1"), ConsistentRead=True)  # 2
    db.get_item(TableName="t", Key=key("q", "s1"), ProjectionExpression="pk")  # still 1
    db.get_item(TableName="t", Key=key("missing"))  # 0.5
    db.batch_get_item(
        RequestItems={"t": {"Keys": [key("q", "s0"), key("q", "s1"), key("q", "s2")]}}
    )  # 0.5 + 1 + 0.5
    db.query(  # 1536 + 6656 + 100 = 8292 B -> 3 chunks -> 1.5
        TableName="t",
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "q"}},
        ProjectionExpression="sk",
    )
    assert [c.read_units for c in meter.calls] == [1.0, 2.0, 1.0, 0.5, 2.0, 1.5]
    assert meter.totals() == (8.0, 0.0)


def test_meter_writes(db: Any) -> None:
    meter = UnitMeter(db)
    db.put_item(TableName="t", Item=big("w", 1500))  # 2
    db.put_item(TableName="t", Item=big("w", 100))  # replaces a 1500 B item: 2
    db.put_item(TableName="t", Item=big("w", 12 * 1024))  # 12
    db.update_item(  # 12 KB item, tiny update: 13 (after = 12 KB + 7 B)
        TableName="t",
        Key=key("w"),
        UpdateExpression="SET n = :n",
        ExpressionAttributeValues={":n": {"N": "1"}},
    )
    with pytest.raises(ClientError):  # a failed condition still costs: the stored 12 KB item
        db.update_item(
            TableName="t",
            Key=key("w"),
            UpdateExpression="SET n = :n",
            ConditionExpression="attribute_not_exists(pk)",
            ExpressionAttributeValues={":n": {"N": "2"}},
        )
    db.batch_write_item(  # rounded separately: 1 + 2
        RequestItems={
            "t": [
                {"PutRequest": {"Item": big("b1", 200)}},
                {"PutRequest": {"Item": big("b2", 1025)}},
            ]
        }
    )
    db.delete_item(TableName="t", Key=key("w"))  # deleting a 12 KB item: 13
    assert [c.write_units for c in meter.calls] == [2, 2, 12, 13, 13, 3, 13]
    assert meter.calls[4].failed


def test_partition_queries_give_moto_s_answers() -> None:
    from benchmarks.accuracy import aws_env  # installs partition_queries

    def answers(client: Any) -> list[Any]:
        out = []
        for pk in ("a", "b", "zz"):
            for forward in (True, False):
                out.append(
                    client.query(
                        TableName="t",
                        KeyConditionExpression="pk = :p AND begins_with(sk, :s)",
                        ExpressionAttributeValues={":p": {"S": pk}, ":s": {"S": "x"}},
                        ScanIndexForward=forward,
                        Limit=3,
                    )
                )
        return [(r["Items"], r.get("LastEvaluatedKey")) for r in out]

    with aws_env():
        client = boto3.client("dynamodb", region_name="us-east-1")
        make_table(client)
        fill(client)
        fast = answers(client)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        make_table(client)
        fill(client)
        assert answers(client) == fast
