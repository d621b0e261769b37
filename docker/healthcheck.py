"""Container health check: exit 0 when every URL given answers within the timeout, 1 otherwise: an
http(s) URL with a 2xx status, a ``tcp://host:port`` by accepting a connection (a gRPC server).

The project image has no curl; the health checks of docker/compose.yaml run this with the image's Python.
Usage: python healthcheck.py URL [URL ...] [--timeout-s 5]
"""
from __future__ import annotations

import argparse
import socket
import sys
import urllib.error
import urllib.request


def healthy(url: str, timeout_s: float) -> bool:
    if url.startswith("tcp://"):
        host, _, port = url[len("tcp://"):].rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=timeout_s).close()
            return True
        except (OSError, ValueError) as error:
            print(f"unhealthy: {url}: {error}", file=sys.stderr)
            return False
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 (a URL we configure)
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError) as error:
        print(f"unhealthy: {url}: {error}", file=sys.stderr)
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("urls", nargs="+")
    parser.add_argument("--timeout-s", type=float, default=5.0)
    args = parser.parse_args(argv)
    return 0 if all(healthy(url, args.timeout_s) for url in args.urls) else 1


if __name__ == "__main__":
    sys.exit(main())
