"""`python -m sessionwatch.infra`: synthesize both stacks into cdk.out (also the `app` of cdk.json).

Under the CDK CLI, CDK_OUTDIR and the context (cdk.json plus `-c` flags) come from the CLI and
App() reads them itself; standalone, this reads cdk.json's context and writes ./cdk.out.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

CDK_JSON = Path(__file__).resolve().parent.parent / "cdk.json"


def standalone_context(cdk_json: Path = CDK_JSON) -> dict[str, Any]:
    return dict(json.loads(cdk_json.read_text()).get("context", {}))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m sessionwatch.infra",
        description="Synthesize the SessionWatch add-on and demo stacks (offline, no Docker). "
        "Under the CDK CLI (cdk.json's app) the output directory and context come from the CLI.",
    )
    parser.add_argument(
        "--outdir", type=Path, default=Path("cdk.out"), help="where to write (default ./cdk.out)"
    )
    args = parser.parse_args(argv)
    # Imported here: aws_cdk starts its jsii kernel (a Node.js process) on import, not for --help.
    from sessionwatch.infra.app import build_app

    if os.environ.get("CDK_OUTDIR"):
        build_app().synth()
    else:
        # Absolute: the jsii kernel process keeps the working directory it started in.
        outdir = args.outdir.resolve()
        build_app(outdir=str(outdir), context=standalone_context()).synth()


if __name__ == "__main__":
    main()
