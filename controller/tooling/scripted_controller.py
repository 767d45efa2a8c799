"""`python -m controller.tooling.scripted_controller run …`: `modelrelease run` with analysis verdicts
scripted in a ConfigMap (`scripted_analysis.py`) instead of the judge.

For the tests and benchmarks in a checkout only: the deployed controller has no way to take a verdict
from anything but the judge (this module is not in the wheel, and no flag of `modelrelease run`
chooses it). Every other option is `modelrelease run`'s, read and checked by the same parser.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from controller.cli import main as cli
from controller.tooling import scripted_analysis


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    if given[:1] != ["run"]:
        print(
            "usage: python -m controller.tooling.scripted_controller run [modelrelease run options]",
            file=sys.stderr,
        )
        return 2
    args = cli.build_parser().parse_args(given)
    return cli.run_controller(args, scripted_analysis.scripted)


if __name__ == "__main__":
    raise SystemExit(main())
