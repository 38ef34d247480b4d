"""Command-line arguments shared by the job scripts in jobs/."""

import argparse


def add_config_arguments(
    parser: argparse.ArgumentParser, config_example: str, override_example: str
) -> None:
    """Add --config, --set and --root, which every job reads the same way."""
    parser.add_argument("--config", required=True, help=f"YAML config, e.g. {config_example}")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override a config key, e.g. {override_example}",
    )
    parser.add_argument(
        "--root",
        default=".",
        help="folder that relative config paths resolve against (default: current folder)",
    )
