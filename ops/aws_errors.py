"""AWS failures as one sentence an operator can act on, for every ``sessionwatch`` subcommand.

Which IAM permission was denied on what, that no credentials or region were found, that a named
thing does not exist: ``explain`` turns botocore's exceptions into the caller's typed error
(``kind`` stable for scripts, the message for people).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)

_ACCESS_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}
_BAD_CREDENTIALS = {
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "InvalidSignatureException",
}
# What each "does not exist" code is called, for the `kind` and the sentence.
_MISSING = {
    "ClusterNotFoundException": ("missing_cluster", "cluster not found"),
    "ServiceNotFoundException": ("missing_service", "service not found"),
    # SQS: the query protocol's code and the JSON protocol's (botocore >= 1.34).
    "AWS.SimpleQueueService.NonExistentQueue": ("missing_queue", "queue does not exist"),
    "QueueDoesNotExist": ("missing_queue", "queue does not exist"),
    "ResourceNotFoundException": ("missing_resource", "not found"),
}
_XML_MESSAGE = re.compile(r"(?s)^.*<Message>(.*?)</Message>.*$")

ErrorFactory = Callable[[str, str], Exception]


@contextmanager
def explain(action: str, subject: str, error: ErrorFactory) -> Iterator[None]:
    """Turn botocore failures of one IAM ``action`` on ``subject`` into ``error(kind, message)``."""
    try:
        yield
    except ProfileNotFound as exc:
        raise error(
            "no_credentials", f"{exc}: check --profile against `aws configure list-profiles`"
        ) from exc
    except (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError) as exc:
        raise error(
            "no_credentials",
            f"no usable AWS credentials ({exc}); set AWS_PROFILE, run `aws sso login`, "
            "or export AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
        ) from exc
    except NoRegionError as exc:
        raise error("no_region", "no AWS region: pass --region or set AWS_REGION") from exc
    except EndpointConnectionError as exc:
        raise error("connection", f"cannot reach AWS: {exc}") from exc
    except ClientError as exc:
        err = exc.response.get("Error", {})
        code = err.get("Code", "")
        # Some emulators put an XML error document into JSON-protocol messages: keep its text.
        message = _XML_MESSAGE.sub(r"\1", err.get("Message", "")).strip()
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in _ACCESS_DENIED or code == "403" or status == 403:
            raise error(
                "access_denied",
                f"access denied: {action} on {subject} ({code}: {message}); "
                f"grant {action} to the credentials you run with",
            ) from exc
        if code in _BAD_CREDENTIALS:
            raise error(
                "no_credentials", f"AWS rejected the credentials ({code}: {message})"
            ) from exc
        if code in _MISSING:
            kind, what = _MISSING[code]
            raise error(kind, f"{what}: {subject}") from exc
        raise error("aws_error", f"{action} on {subject} failed: {code}: {message}") from exc
    except BotoCoreError as exc:
        raise error("aws_error", f"{action} on {subject} failed: {exc}") from exc
