"""`python -m infra`: synthesize both stacks into cdk.out (also the `app` of cdk.json)."""

from __future__ import annotations

import os

from infra.app import build_app


def main() -> None:
    # Under the CDK CLI, CDK_OUTDIR is set and App() picks it up; standalone, write ./cdk.out.
    outdir = None if os.environ.get("CDK_OUTDIR") else "cdk.out"
    build_app(outdir=outdir).synth()


if __name__ == "__main__":
    main()
