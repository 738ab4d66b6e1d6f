"""SessionWatch: catch the MCP sessions an ECS deployment loses, with the cause, within seconds.

One import package, one subpackage per part (docs/architecture.md):

- ``sessionwatch.server``: ``instrument()`` for any MCP ASGI app, and the reference server;
- ``sessionwatch.sidecar``: the same instrumentation as a reverse proxy (any server language);
- ``sessionwatch.detectors``: the Lambda detectors (Powertools) over a pure correlation core;
- ``sessionwatch.infra``: the ``SessionWatch`` CDK construct and the app's stacks;
- ``sessionwatch.dashboards``: the CloudWatch dashboard as code;
- ``sessionwatch.ops``: the ``sessionwatch`` command (probe, audit, redrive);
- ``sessionwatch.contract``: the names the parts share.

Importing this package imports nothing else: each part brings its own dependencies (extras).
"""

__version__ = "0.2.0"
