"""``sessionwatch probe URL``: hold one MCP session through the load balancer and report each call.

The wire work (initialize, write-then-read cycles, cookie jar, stale-cookie mode, records with
fingerprints) is ``sessionwatch.ops.client``; this module adds the operator's view:
what each call means (``ops.probe_events``), how long to run, what to print and the exit status.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Callable
from typing import Any, TextIO
from urllib.parse import urlsplit

from sessionwatch.ops.client import INITIALIZED, CallRecord, ProbeClient, ProbeMode, drive
from sessionwatch.ops.probe_events import Observation, ProbeTally

EXIT_OK = 0
EXIT_LOSS = 1
EXIT_ERROR = 2


def _human(obs: Observation) -> str:
    """The client's call line, then what it means on indented lines below it."""
    line = obs.record.line()
    if obs.note:
        line += f"\n    {str(obs.event).upper()}: {obs.note}"
    if obs.cookie_note:
        line += f"\n    cookie rotated: {obs.cookie_note}"
    return line


def _human_summary(summary: dict[str, Any], exit_code: int) -> str:
    if exit_code == EXIT_LOSS:
        verdict = (
            f"LOST {summary['sessions_lost']} of {summary['sessions_opened']} session(s) "
            f"(loss rate {summary['loss_rate']:.0%}), the first "
            f"{summary['seconds_to_first_loss']} s after the probe started"
        )
    elif exit_code == EXIT_OK:
        verdict = "no session lost"
    elif summary["sessions"]:
        verdict = (
            f"no session lost, but {summary['calls_failed']} call(s) failed "
            f"(longest run of failures {summary['longest_failure_streak']})"
        )
    else:
        verdict = "could not open a session"
    closed = f"{summary['sessions_closed']} closed by DELETE"
    if summary["sessions_not_found_on_close"]:
        closed += (
            f", {summary['sessions_not_found_on_close']} not found by the task the DELETE reached"
        )
    if summary["close_failures"]:
        closed += f", could not close {'; '.join(summary['close_failures'])}"
    return (
        f"probe: {verdict}; cookie mode: {summary['cookie_mode']}; "
        f"{summary['sessions_opened']} session(s) opened, {closed}; {summary['calls']} calls "
        f"on {len(summary['tasks_seen'])} task(s) "
        f"{', '.join(summary['tasks_seen'])}; lost after being routed away "
        f"{summary['losses_routed_away']}, stickiness breaks {summary['stickiness_breaks']}, "
        f"transport errors {summary['transport_errors']}, other errors {summary['errors']}, "
        f"cookie rotations {summary['cookie_rotations']} (normal)"
    )


def _mode(tally: ProbeTally) -> ProbeMode:
    if tally.no_cookies:
        return ProbeMode.NO_COOKIES
    return ProbeMode.STALE_COOKIE if tally.stale_cookie else ProbeMode.SESSION


async def probe(
    url: str,
    tally: ProbeTally,
    *,
    interval: float,
    duration: float | None,
    timeout: float,
    on_observation: Callable[[Observation], None],
    close_sessions: bool = True,
) -> bool:
    """Run the probe, counting into ``tally``; returns whether the first session could be opened.

    Without ``duration`` the run ends at the first loss; with it, a lost session is replaced at
    once by a new one (a new ``initialize``, as the spec asks of a client after a 404) and the
    probe keeps counting until the time is up, so one run counts every loss of a whole rollout.
    """
    stop = asyncio.Event()
    connected: list[bool] = []

    def on_record(record: CallRecord) -> None:
        obs = tally.observe(record)
        # The handshake's outcome: initialize, or its notification when that one failed.
        if record.tool in ("initialize", INITIALIZED) and not connected:
            # A handshake that lost its session (a no-cookie client's notification routed away)
            # did open one: that is a loss to count, not a connection error.
            connected.append(record.ok or record.session_lost)
            if not connected[0]:
                stop.set()  # nothing to probe: a usage or connection error, not a loss
        on_observation(obs)

    loop = asyncio.get_running_loop()
    timer = loop.call_later(duration, stop.set) if duration is not None else None
    stops_on_ctrl_c = _stop_on_ctrl_c(loop, stop)
    async with ProbeClient(url, mode=_mode(tally), name="probe", timeout=timeout) as client:
        try:
            await drive(
                client,
                interval=interval,
                on_record=on_record,
                on_lost="stop" if duration is None else "reconnect",
                stop=stop,
                # the dead session, before each re-initialize
                on_closed=tally.closed if close_sessions else None,
            )
        finally:
            if timer is not None:
                timer.cancel()
            if stops_on_ctrl_c:
                loop.remove_signal_handler(signal.SIGINT)  # Python's own Ctrl-C handling again
            # Never leave a session open on a production task: at the end, after a loss, and on
            # Ctrl-C (the run's stop, or asyncio.run's cancel off the main thread; the DELETE
            # still runs, bounded; a second Ctrl-C interrupts it).
            if close_sessions:
                await _close_last(client, tally, timeout)
    return bool(connected and connected[0])


def _stop_on_ctrl_c(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> bool:
    """The first Ctrl-C ends the run at its next step (the session is still closed) by setting
    ``stop``, not by cancelling the task: a cancellation that lands inside an HTTP call can be
    absorbed on its way out, and the probe then ran on after Ctrl-C. A second Ctrl-C interrupts
    at once (Python's handler is back). False where a loop cannot take signals (not the main
    thread): asyncio.run's own Ctrl-C handling applies there."""

    def first() -> None:
        stop.set()
        loop.remove_signal_handler(signal.SIGINT)

    try:
        loop.add_signal_handler(signal.SIGINT, first)
    except (NotImplementedError, RuntimeError, ValueError):
        return False
    return True


async def _close_last(client: ProbeClient, tally: ProbeTally, timeout: float) -> None:
    try:
        record = await asyncio.wait_for(client.close_session(), timeout)
    except (TimeoutError, asyncio.CancelledError):
        tally.close_failures.append(f"{client.session or '?'}: no answer to DELETE")
        return
    if record is not None:
        tally.closed(record)


class ObservationSink:
    """Writes each observation as it happens: a human line or one JSON object per line."""

    def __init__(self, out: TextIO, as_json: bool) -> None:
        self.out = out
        self.as_json = as_json

    def __call__(self, obs: Observation) -> None:
        text = json.dumps(obs.to_dict()) if self.as_json else _human(obs)
        self.out.write(text + "\n")
        self.out.flush()


def run_probe(
    url: str,
    *,
    interval: float = 5.0,
    duration: float | None = None,
    as_json: bool = False,
    stale_cookie: bool = False,
    no_cookies: bool = False,
    timeout: float = 10.0,
    out: TextIO | None = None,
    close_sessions: bool = True,
) -> int:
    """CLI body: 1 on any session loss; else 2 if no session opened or any call failed for
    another reason (no HTTP answer, an HTTP or JSON-RPC error); else 0."""
    out = sys.stdout if out is None else out
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
        print(f"sessionwatch probe: not an http(s) URL: {url}", file=sys.stderr)
        return EXIT_ERROR
    if stale_cookie and no_cookies:
        print(
            "sessionwatch probe: --stale-cookie and --no-cookies exclude each other",
            file=sys.stderr,
        )
        return EXIT_ERROR
    tally = ProbeTally(stale_cookie=stale_cookie, no_cookies=no_cookies)
    try:
        connected = asyncio.run(
            probe(
                url,
                tally,
                interval=interval,
                duration=duration,
                timeout=timeout,
                on_observation=ObservationSink(out, as_json),
                close_sessions=close_sessions,
            )
        )
    except KeyboardInterrupt:  # Ctrl-C ends an until-loss run: still report what was seen
        connected = bool(tally.sessions)
    summary = tally.summary()
    if tally.losses:
        code = EXIT_LOSS
    elif not connected or tally.transport_errors or tally.errors:
        code = EXIT_ERROR
    else:
        code = EXIT_OK
    if as_json:
        out.write(json.dumps({"summary": summary, "exit_code": code}) + "\n")
    else:
        out.write(_human_summary(summary, code) + "\n")
    return code
