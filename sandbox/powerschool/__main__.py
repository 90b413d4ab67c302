"""``python -m sandbox.powerschool`` — run the PowerSchool sandbox (see docs/sandbox-contract.md)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .app import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from .plugin import PluginError, parse_plugin
from .server import serve_forever


def _district(args: argparse.Namespace) -> dict[str, Any]:
    if args.district:
        with open(args.district, encoding="utf-8") as fh:
            return json.load(fh)
    if args.students is None:
        sys.exit("error: give --district PATH or --students N --seed S")
    from sandbox.generate import build_district  # lazy: written separately, only needed here

    return build_district(students=args.students, seed=args.seed)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m sandbox.powerschool", description="PowerSchool sandbox server")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--district", help="path to a district.json written by sandbox.generate")
    src.add_argument("--students", type=int, help="generate a district of N students")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--db", help="SQLite file for the state (reused if it already holds a district)")
    p.add_argument("--client-id", default=DEFAULT_CLIENT_ID)
    p.add_argument("--client-secret", default=DEFAULT_CLIENT_SECRET)
    p.add_argument("--max-page-size", type=int, default=100)
    p.add_argument("--plugin", help="the installed plugin.xml (default: the bundled default_plugin.xml, "
                                    "which grants everything)")
    p.add_argument("--min-interval-ms", type=int, default=0,
                   help="minimum interval between /ws requests of the plugin; sooner ones get 429 (0 = off)")
    args = p.parse_args(argv)
    if args.min_interval_ms < 0:
        p.error("--min-interval-ms must be >= 0")
    plugin_xml = None
    if args.plugin:
        try:
            with open(args.plugin, encoding="utf-8") as fh:
                plugin_xml = fh.read()
            parse_plugin(plugin_xml)
        except (OSError, PluginError) as exc:
            sys.exit(f"error: cannot install plugin {args.plugin}: {exc}")
    serve_forever(_district(args), args.host, args.port, client_id=args.client_id,
                  client_secret=args.client_secret, db_path=args.db, max_page_size=args.max_page_size,
                  plugin_xml=plugin_xml, min_interval_ms=args.min_interval_ms)


if __name__ == "__main__":
    main()
