"""moto_server as the lab's AWS: it starts, boto3 reaches it, and it stops."""

from __future__ import annotations

from pathlib import Path

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


def test_moto_binds_its_own_port_and_is_the_server_that_answers(tmp_path: Path) -> None:
    # A port chosen free and released before moto binds it can be taken by a parallel run (and
    # its moto_server would then answer as this lab's AWS): no port may be chosen in advance.
    log = tmp_path / "moto.log"
    log.write_text(" * Running on http://127.0.0.1:1\n")  # a reused log's earlier start-up line
    moto = MotoServer(log_path=log)
    assert moto.port is None
    with moto:
        assert moto.port is not None and moto.port != 1
        moto.client("sqs").create_queue(QueueName="mine")
        assert moto._process is not None and moto._process.poll() is None
        assert [u.rsplit("/", 1)[-1] for u in moto.client("sqs").list_queues()["QueueUrls"]] == [
            "mine"
        ]
    with pytest.raises(RuntimeError, match="not started"):
        _ = moto.endpoint
