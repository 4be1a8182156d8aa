"""Command line: ``python -m tests.testbed up|down|status|ssh|build``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from tests.testbed.core import Testbed, TestbedError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.testbed",
        description="Booted Debian test hosts (systemd-nspawn in network namespaces).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="boot hosts (reuses running ones) and print how to reach them")
    up.add_argument("names", nargs="+", metavar="NAME")
    up.add_argument("--json", action="store_true", help="print a JSON list of hosts")
    up.add_argument("--layer", metavar="LAYER", help="start from a captured layer (see capture)")
    capture = sub.add_parser(
        "capture", help="power a host off and keep its changes as a layer for new hosts"
    )
    capture.add_argument("name", metavar="NAME")
    capture.add_argument("layer", metavar="LAYER")
    sub.add_parser("layers", help="list the captured layers")
    drop = sub.add_parser("drop-layer", help="remove a captured layer")
    drop.add_argument("layer", metavar="LAYER")
    down = sub.add_parser("down", help="remove hosts (and the bridge/proxy once none is left)")
    down.add_argument("names", nargs="*", metavar="NAME")
    down.add_argument("--all", action="store_true", help="remove everything this tool made")
    status = sub.add_parser("status", help="list hosts and shared pieces")
    status.add_argument("--json", action="store_true")
    ssh = sub.add_parser("ssh", help="open a shell (or run a command) on a host")
    ssh.add_argument("name", metavar="NAME")
    ssh.add_argument("cmd", nargs=argparse.REMAINDER, help="command to run instead of a shell")
    build = sub.add_parser("build", help="build the cached rootfs tarball if it is missing")
    build.add_argument("--force", action="store_true", help="rebuild even when cached")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    testbed = Testbed()
    try:
        if args.command == "up":
            hosts = testbed.up(args.names, layer=args.layer)
            if args.json:
                print(json.dumps([h.as_dict() for h in hosts], indent=2))
            else:
                for h in hosts:
                    print(
                        f"{h.name}: address {h.address} port {h.port} user {h.user} "
                        f"key {h.key_path}"
                    )
        elif args.command == "down":
            if args.all:
                testbed.down_all()
            elif args.names:
                testbed.down(args.names)
            else:
                print("down: name hosts or pass --all", file=sys.stderr)
                return 2
        elif args.command == "capture":
            print(testbed.capture(args.name, args.layer))
        elif args.command == "layers":
            for layer in testbed.layers():
                print(layer)
        elif args.command == "drop-layer":
            testbed.drop_layer(args.layer)
        elif args.command == "status":
            state = testbed.status()
            if args.json:
                print(json.dumps(state, indent=2))
            else:
                print(f"state dir: {state['state_dir']}")
                print(f"rootfs:    {state['rootfs'] or '(not built)'}")
                print(f"bridge:    {state['bridge'] or '(absent)'}")
                print(f"proxy:     {state['proxy'] or '(not running)'}")
                for h in state["hosts"]:
                    print(f"  {h['name']:<24} {h.get('address', '?'):<16} {h['state']}")
        elif args.command == "ssh":
            testbed.require()
            host = testbed.get(args.name)
            argv_ssh = host.ssh_command(" ".join(args.cmd) if args.cmd else None)
            if not args.cmd:
                argv_ssh.insert(1, "-t")
            os.execvp(argv_ssh[0], argv_ssh)
        elif args.command == "build":
            path, seconds = testbed.build(force=args.force)
            took = "cached" if seconds is None else f"built in {seconds:.1f} s"
            print(f"{path} ({took})")
    except TestbedError as exc:
        print(f"testbed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
