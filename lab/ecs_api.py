"""The lab's stand-in for the ECS APIs the detectors call and moto does not implement for the
lab's played service: DescribeServices and DescribeServiceDeployments (the strategy read of
detectors/ecs_read.py), ListServiceDeployments and StopServiceDeployment (stop-on-loss). The
lab's ECS play registers each deployment it starts (its service deployment ARN, creation time
and ``deploymentConfiguration``) and honours a stop as ECS does.

DescribeServices answers as the ECS API reference describes: the service's current
``deploymentConfiguration`` (the latest deployment's) and ``deployments[]`` holding only the
PRIMARY and ACTIVE ones (a deployment that ended is INACTIVE and no longer listed);
DescribeServiceDeployments answers each deployment's own configuration.

What it rests on (ECS API reference and developer guide, "Stopping Amazon ECS service
deployments"): StopServiceDeployment with ROLLBACK "rolls back the service deployment to the
previous service revision", even without rollback configured; a PENDING or IN_PROGRESS
deployment moves to ROLLBACK_REQUESTED "and then the rollback operation starts". A stop of a
deployment that is not running fails (ECS documents ConflictException / ServiceDeployment-
NotFoundException; the stand-in raises a ClientError of the same code). The requests are
validated against botocore's ECS model, so a call the real API would refuse is refused here.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import botocore.session
from botocore.exceptions import ClientError, ParamValidationError
from botocore.validate import ParamValidator


@dataclass
class _Deployment:
    arn: str
    service: str
    created_at: float
    status: str = "IN_PROGRESS"
    stop_requested_at: float | None = None
    configuration: dict[str, Any] = field(default_factory=lambda: {"strategy": "ROLLING"})


@dataclass
class LabEcsApi:
    region: str
    account: str
    cluster: str
    deployments: dict[str, _Deployment] = field(default_factory=dict)  # by ecs-svc id
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._model = botocore.session.get_session().get_service_model("ecs")

    def _validate(self, operation: str, params: dict[str, Any]) -> None:
        shape = self._model.operation_model(operation).input_shape
        assert shape is not None  # both operations take a request
        report = ParamValidator().validate(params, shape)
        if report.has_errors():
            raise ParamValidationError(report=report.generate_report())
        self.calls.append((operation, params))

    def register(
        self, service: str, deployment_id: str, configuration: dict[str, Any] | None = None
    ) -> str:
        """The play started a deployment: ECS creates its service deployment now."""
        arn = (
            f"arn:aws:ecs:{self.region}:{self.account}:service-deployment/{self.cluster}/"
            f"{service}/{deployment_id.rsplit('/', 1)[-1]}"
        )
        dep = _Deployment(arn, service, time.time())
        if configuration is not None:
            dep.configuration = dict(configuration)
        with self._lock:
            self.deployments[deployment_id] = dep
        return arn

    def finish(self, deployment_id: str, status: str) -> None:
        with self._lock:
            if deployment_id in self.deployments:
                self.deployments[deployment_id].status = status

    def stop_requested(self, deployment_id: str) -> float | None:
        with self._lock:
            dep = self.deployments.get(deployment_id)
            return None if dep is None else dep.stop_requested_at

    # --- the API calls, boto3-shaped ------------------------------------------------------

    def describe_services(self, **params: Any) -> dict[str, Any]:
        self._validate("DescribeServices", params)
        out = []
        with self._lock:
            for service in params["services"]:
                mine = [(i, d) for i, d in self.deployments.items() if d.service == service]
                if not mine:
                    continue
                running = [(i, d) for i, d in mine if d.status in _RUNNING]
                listed = [
                    {"id": i, "status": "PRIMARY" if n == len(running) - 1 else "ACTIVE",
                     "createdAt": datetime.fromtimestamp(d.created_at).astimezone()}
                    for n, (i, d) in enumerate(running)
                ]  # fmt: skip
                out.append(
                    {
                        "serviceName": service,
                        "deploymentController": {"type": "ECS"},
                        "deploymentConfiguration": dict(mine[-1][1].configuration),
                        "deployments": listed,
                    }
                )
        return {"services": out, "failures": []}

    def describe_service_deployments(self, **params: Any) -> dict[str, Any]:
        self._validate("DescribeServiceDeployments", params)
        wanted = set(params["serviceDeploymentArns"])
        with self._lock:
            found = [
                {"serviceDeploymentArn": d.arn, "status": d.status,
                 "deploymentConfiguration": dict(d.configuration)}
                for d in self.deployments.values()
                if d.arn in wanted
            ]  # fmt: skip
        return {"serviceDeployments": found, "failures": []}

    def list_service_deployments(self, **params: Any) -> dict[str, Any]:
        self._validate("ListServiceDeployments", params)
        statuses = set(params.get("status") or [])
        window = params.get("createdAt") or {}
        after, before = window.get("after"), window.get("before")
        out = []
        with self._lock:
            for dep in self.deployments.values():
                created = datetime.fromtimestamp(dep.created_at).astimezone()
                if dep.service != params["service"] or (statuses and dep.status not in statuses):
                    continue
                if (after and created < after) or (before and created > before):
                    continue
                out.append({"serviceDeploymentArn": dep.arn, "createdAt": created,
                            "status": dep.status})  # fmt: skip
        return {"serviceDeployments": out}

    def stop_service_deployment(self, **params: Any) -> dict[str, Any]:
        self._validate("StopServiceDeployment", params)
        with self._lock:
            dep = next(
                (d for d in self.deployments.values() if d.arn == params["serviceDeploymentArn"]),
                None,
            )
            if dep is None:
                raise _error("ServiceDeploymentNotFoundException", "StopServiceDeployment")
            if dep.status not in ("PENDING", "IN_PROGRESS", "ROLLBACK_REQUESTED"):
                raise _error("ConflictException", "StopServiceDeployment")
            dep.status = "ROLLBACK_REQUESTED"
            dep.stop_requested_at = dep.stop_requested_at or time.time()
        return {"serviceDeploymentArn": dep.arn}


_RUNNING = ("PENDING", "IN_PROGRESS", "ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS")


def _error(code: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, operation)
