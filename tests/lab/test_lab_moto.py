"""moto_server as the lab's AWS: it starts, boto3 reaches it, and it stops."""

from __future__ import annotations

import boto3
import pytest

from lab.moto import MotoServer


def test_moto_server_serves_boto3_and_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    with MotoServer() as moto:
        sqs = moto.client("sqs")
        url = sqs.create_queue(QueueName="q")["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="hello")
        # the env() variables alone point a plain boto3 client at the same account
        for key, value in moto.env().items():
            monkeypatch.setenv(key, value)
        plain = boto3.client("sqs")
        messages = plain.receive_message(QueueUrl=url)["Messages"]
        assert [m["Body"] for m in messages] == ["hello"]
        process = moto._process
    assert process is not None and process.poll() is not None
