"""The deployment guards' settings (drain gate, stop on loss, first-loss alert), from the
environment the construct sets. Every guard is off unless its variable turns it on."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from sessionwatch import contract
from sessionwatch.detectors.config import ConfigError, number_setting

DEFAULT_MAX_HOLD_S = 3600.0
# ECS calls an IN_PROGRESS hook again after 30 s unless told otherwise (developer guide,
# "Lambda hooks for Amazon ECS service deployments").
DEFAULT_CALLBACK_S = 30.0


@dataclass(frozen=True)
class GuardConfig:
    max_hold_s: float = DEFAULT_MAX_HOLD_S
    callback_s: float = DEFAULT_CALLBACK_S
    stop_on_loss: int = 0  # deployment losses that stop it (ROLLBACK); 0 = off
    first_loss_alert: bool = False

    @property
    def acts_on_losses(self) -> bool:
        return self.stop_on_loss > 0 or self.first_loss_alert


def load_guard_config(env: Mapping[str, str] | None = None) -> GuardConfig:
    env = os.environ if env is None else env
    flag = env.get(contract.ENV_FIRST_LOSS_ALERT, "").strip().lower()
    if flag not in ("", "true", "false"):
        raise ConfigError(f"{contract.ENV_FIRST_LOSS_ALERT} must be true or false, got {flag!r}")
    return GuardConfig(
        max_hold_s=number_setting(env, contract.ENV_DRAIN_GATE_MAX_HOLD, DEFAULT_MAX_HOLD_S, 0),
        callback_s=number_setting(env, contract.ENV_DRAIN_GATE_CALLBACK, DEFAULT_CALLBACK_S, 1),
        stop_on_loss=int(number_setting(env, contract.ENV_STOP_ON_LOSS, 0, 0)),
        first_loss_alert=flag == "true",
    )
