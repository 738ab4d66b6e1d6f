"""The simulated world, built once: what AWS and the server would send, and the handler harness.

- ``world.ecs``: ECS events (task, deployment, hook, service action) in the documented shapes,
  the ``ServiceRef`` naming scheme, ECS's stop codes and reasons, ``iso``;
- ``world.server_logs``: the server's JSON lines (through its own logger) at simulated times and
  the CloudWatch Logs subscription payloads that carry them;
- ``world.aws``: real boto3 clients whose calls the world answers in process;
- ``world.harness``: the detectors' handlers at a simulated time, one context manager that
  always restores.

Used by the lab, the benchmarks and the tests; imports nothing of them, and the ``sessionwatch``
package never imports it (tests/test_layout.py).
"""
