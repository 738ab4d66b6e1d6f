"""CloudWatch alarm evaluation replayed against hand-computed cases (M of N, missing data)."""

from __future__ import annotations

import pytest

from lab.alarm_replay import (
    ALARM,
    INSUFFICIENT,
    OK,
    AlarmDefinition,
    Datapoint,
    Missing,
    aggregate,
    alarms_from_template,
    decide,
    first_alarm,
    replay,
    transitions,
)

DIMS = (("Cause", "deployment"), ("ServiceName", "svc"))


def alarm(
    *,
    n: int = 3,
    m: int | None = None,
    missing: Missing = Missing.MISSING,
    threshold: float = 1,
    comparison: str = "GreaterThanOrEqualToThreshold",
    statistic: str = "Sum",
) -> AlarmDefinition:
    return AlarmDefinition(
        logical_id="A",
        metric_name="SessionsLost",
        namespace="SessionWatch",
        dimensions=DIMS,
        statistic=statistic,
        period=60,
        evaluation_periods=n,
        datapoints_to_alarm=m,
        threshold=threshold,
        comparison=comparison,
        treat_missing_data=missing,
    )


X, O, _ = 5.0, 0.0, None  # noqa: E741 - breaching, not breaching, missing (threshold 1, >=)


@pytest.mark.parametrize(
    ("window", "missing", "expected"),
    [
        # 3 of 3, every treatment, from the cases CloudWatch's documentation tabulates
        ([O, O, O], Missing.MISSING, OK),
        ([X, X, X], Missing.MISSING, ALARM),
        ([O, X, X], Missing.MISSING, OK),
        ([O, _, X], Missing.MISSING, OK),
        ([_, _, X], Missing.MISSING, ALARM),
        ([_, _, O], Missing.MISSING, OK),
        ([_, _, _], Missing.MISSING, INSUFFICIENT),
        ([_, _, X], Missing.IGNORE, "PREVIOUS"),
        ([_, _, _], Missing.IGNORE, "PREVIOUS"),
        ([X, X, X], Missing.IGNORE, ALARM),
        ([_, _, X], Missing.BREACHING, ALARM),
        ([_, _, O], Missing.BREACHING, OK),
        ([_, _, _], Missing.BREACHING, ALARM),
        ([_, _, X], Missing.NOT_BREACHING, OK),
        ([_, _, _], Missing.NOT_BREACHING, OK),
    ],
)
def test_three_of_three_missing_data(
    window: list[float | None], missing: Missing, expected: str
) -> None:
    for previous in (OK, ALARM):
        state, _, _ = decide(window, alarm(missing=missing), previous)
        assert state == (previous if expected == "PREVIOUS" else expected)


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        ([X, O, X], ALARM),  # 2 of 3 breaching
        ([X, O, O], OK),
        ([O, X, X], ALARM),
        ([X, _, X], ALARM),  # missing: 2 present, both breach, M=2 reached
        ([X, _, O], OK),
    ],
)
def test_two_of_three(window: list[float | None], expected: str) -> None:
    assert decide(window, alarm(m=2), OK)[0] == expected


def test_comparisons_at_the_threshold() -> None:
    assert decide([1.0], alarm(n=1, comparison="GreaterThanOrEqualToThreshold"), OK)[0] == ALARM
    assert decide([1.0], alarm(n=1, comparison="GreaterThanThreshold"), OK)[0] == OK
    assert decide([1.0], alarm(n=1, comparison="LessThanOrEqualToThreshold"), OK)[0] == ALARM
    assert decide([1.0], alarm(n=1, comparison="LessThanThreshold"), OK)[0] == OK


def point(t: float, v: float, dims: tuple[tuple[str, str], ...] = DIMS) -> Datapoint:
    return Datapoint("SessionWatch", "SessionsLost", dims, t, v)


def test_aggregation_per_aligned_period_and_exact_dimensions() -> None:
    points = [
        point(60, 1),
        point(119.9, 2),
        point(120, 4),
        point(61, 100, dims=(("ServiceName", "svc"),)),  # other dimension set: another metric
        Datapoint("Other", "SessionsLost", DIMS, 61, 100),
    ]
    assert aggregate(alarm(), points, 60) == {1: 3.0, 2: 4.0}
    assert aggregate(alarm(statistic="Maximum"), points, 60) == {1: 2.0, 2: 4.0}
    assert aggregate(alarm(statistic="SampleCount"), points, 60) == {1: 2.0, 2: 1.0}
    assert aggregate(alarm(statistic="Average"), points, 60) == {1: 1.5, 2: 4.0}


def test_replay_timeline_starts_insufficient_then_alarms_then_recovers() -> None:
    # 1 of 1, missing: INSUFFICIENT until data, ALARM on the loss, OK on a zero
    definition = alarm(n=1)
    points = [point(130, 0), point(200, 2), point(250, 0)]
    timeline = replay(definition, points, start=60, end=300)
    assert [e.state for e in timeline] == [INSUFFICIENT, OK, ALARM, OK]
    assert [e.time for e in timeline] == [120, 180, 240, 300]
    assert first_alarm(timeline) == 240
    assert [e.state for e in transitions(timeline)] == [OK, ALARM, OK]
    # a later period without data is missing: back to INSUFFICIENT_DATA
    later = replay(definition, points, start=60, end=330)
    assert later[-1].state == INSUFFICIENT and later[-1].time == 330


def test_replay_not_breaching_is_ok_from_the_first_evaluation() -> None:
    definition = alarm(n=1, missing=Missing.NOT_BREACHING)
    timeline = replay(definition, [point(75, 1)], start=0, end=179)
    assert [e.state for e in timeline] == [OK, ALARM, OK]


def test_period_scale_shrinks_periods() -> None:
    definition = alarm(n=1, missing=Missing.NOT_BREACHING)  # 60 s scaled by 10: 6 s periods
    timeline = replay(definition, [point(13, 1)], start=0, end=18, period_scale=10)
    assert [e.state for e in timeline] == [OK, OK, ALARM]
    assert first_alarm(timeline) == 18


def test_alarms_from_template_reads_fields_and_resolves_refs() -> None:
    template = {
        "Resources": {
            "Lost": {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {
                    "MetricName": "SessionsLost",
                    "Namespace": "SessionWatch",
                    "Dimensions": [
                        {"Name": "ServiceName", "Value": {"Ref": "ServiceParam"}},
                        {"Name": "Cause", "Value": "deployment"},
                    ],
                    "Statistic": "Sum",
                    "Period": 60,
                    "EvaluationPeriods": 1,
                    "DatapointsToAlarm": 1,
                    "Threshold": 1,
                    "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                    "TreatMissingData": "notBreaching",
                },
            },
            "Math": {"Type": "AWS::CloudWatch::Alarm", "Properties": {"Metrics": []}},
            "Topic": {"Type": "AWS::SNS::Topic"},
        }
    }
    alarms, skipped = alarms_from_template(template, {"ServiceParam": "svc"})
    assert len(alarms) == 1 and skipped == ["Math: metric math or extended statistic, not replayed"]
    lost = alarms[0]
    assert lost.dimensions == DIMS
    assert lost.m == 1 and lost.treat_missing_data is Missing.NOT_BREACHING
    assert lost.matches(
        "SessionWatch", "SessionsLost", {"ServiceName": "svc", "Cause": "deployment"}
    )
