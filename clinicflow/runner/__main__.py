"""``python -m clinicflow.runner [--config FILE]``: serve with the environment's configuration."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from clinicflow.errors import ClinicflowError
from clinicflow.runner.app import run
from clinicflow.runner.config import ENV_VARS, RunnerConfig


def main(argv: list[str] | None = None) -> int:
    """Parse ``--config``, read the environment and serve until stopped."""
    parser = argparse.ArgumentParser(
        prog="python -m clinicflow.runner",
        description="clinicflow runner. Settings: "
        + "; ".join(f"{name}: {text}" for name, text in ENV_VARS.items()),
    )
    parser.add_argument("--config", help="TOML or YAML config file (CLINICFLOW_CONFIG)")
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="serve unsigned webhooks (no WAHA_HMAC_KEY) on a non-loopback address "
        "(CLINICFLOW_INSECURE=1)",
    )
    args = parser.parse_args(argv)
    try:
        config = RunnerConfig.from_env(config_file=args.config)
        if args.insecure:
            config = replace(config, insecure=True)
        run(config)
    except ClinicflowError as exc:  # one line: the data dir in use, unwritable, too new...
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
