"""Checks for the HTML pages the project writes (reports, Data Docs): what a browser would fetch to show a
page, and the page opened in headless Chromium with no network at all.

Written independently of the code that writes the pages (jobs/quality/data_docs.py has its own rewriting rules):
an HTML parser lists every reference a browser fetches without a click - ``<script src>``, ``<link href>``,
``<img src|srcset>``, ``<source>``, ``<video poster>``, ``<iframe>``, ``<embed>``, ``<object data>``, CSS
``url(...)`` and ``@import`` in ``<style>``, ``style=""`` and every local style sheet the page loads.
Links to follow (``<a href>``) are not fetches.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_TIMEOUT_S = 90
_CSS_REF = re.compile(r"""url\(\s*(["']?)([^"')]+?)\1\s*\)|@import\s+(["'])([^"']+)\3""", re.IGNORECASE)
_FETCH_ATTRS = {
    "script": ("src",), "img": ("src", "srcset"), "source": ("src", "srcset"), "video": ("poster", "src"),
    "audio": ("src",), "track": ("src",), "iframe": ("src",), "embed": ("src",), "object": ("data",),
    "input": ("src",), "link": ("href",), "body": ("background",),
}


@dataclass(frozen=True)
class Ref:
    kind: str          # e.g. "script src", "link href", "css url"
    url: str
    where: str         # the page or style sheet it was found in


def is_remote(url: str) -> bool:
    """True for anything a browser would ask another machine for (http(s), ftp, ws, protocol-relative)."""
    url = url.strip()
    return bool(re.match(r"^(?:[a-z][a-z0-9+.-]*:)?//", url, re.IGNORECASE)) and not url.lower().startswith("file:")


class _Fetches(HTMLParser):
    def __init__(self, where: str):
        super().__init__(convert_charrefs=True)
        self.where = where
        self.refs: list[Ref] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for name in _FETCH_ATTRS.get(tag, ()):
            value = a.get(name)
            if not value:
                continue
            urls = [part.strip().split()[0] for part in value.split(",") if part.strip()] if name == "srcset" else [value]
            self.refs += [Ref(f"{tag} {name}", u, self.where) for u in urls]
        if a.get("style"):
            self.refs += css_refs(a["style"], self.where)
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        if tag == "style":
            self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.refs += css_refs(data, self.where)


def css_refs(css: str, where: str) -> list[Ref]:
    refs = []
    for m in _CSS_REF.finditer(css):
        url = m.group(2) or m.group(4)
        if not url.startswith("data:"):
            refs.append(Ref("css url" if m.group(2) else "css @import", url, where))
    return refs


def fetched_refs(page: Path) -> list[Ref]:
    """Every reference fetched to show ``page``, following the local style sheets it loads (and theirs)."""
    parser = _Fetches(str(page))
    parser.feed(page.read_text(encoding="utf-8"))
    refs = [r for r in parser.refs if not r.url.startswith("data:")]
    seen: set[Path] = set()
    queue = [(r, page.parent) for r in refs if r.kind in ("link href", "css @import")]
    while queue:
        ref, base = queue.pop()
        target = local_target(ref.url, base)
        if target is None or target in seen or target.suffix != ".css" or not target.is_file():
            continue
        seen.add(target)
        found = css_refs(target.read_text(encoding="utf-8", errors="replace"), str(target))
        refs += found
        queue += [(r, target.parent) for r in found if r.kind == "css @import"]
    return refs


def local_target(url: str, base: Path) -> Path | None:
    """The file a relative reference names, or None for a remote one or an in-page anchor."""
    if is_remote(url) or url.startswith("#"):
        return None
    path = unquote(urlsplit(url).path)
    if not path:
        return None
    return Path(path) if url.startswith(("/", "file:")) else (base / path).resolve()


def offline_problems(page: Path) -> list[str]:
    """Remote fetches of ``page`` and local references to files that do not exist (both break offline)."""
    problems = []
    for ref in fetched_refs(page):
        if is_remote(ref.url):
            problems.append(f"{ref.where}: {ref.kind} {ref.url} is remote")
            continue
        target = local_target(ref.url, Path(ref.where).parent)
        if target is not None and not target.exists():
            problems.append(f"{ref.where}: {ref.kind} {ref.url} names a missing file")
    return problems


# --- headless Chromium -----------------------------------------------------------------------------------
def chromium(args: list[str], profile: Path, *, offline: bool = False) -> subprocess.CompletedProcess:
    """Run headless Chromium. ``offline``: in a new network namespace (no interface but a down loopback),
    so nothing can leave the machine whatever the page asks for."""
    assert CHROMIUM.is_file(), "headless Chromium missing: run scripts/bootstrap.sh (installs Debian's chromium)"
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", *args]
    if offline:
        assert shutil.which("unshare"), "unshare (util-linux) is needed to open a page without network"
        cmd = ["unshare", "--net", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S, check=True)


def requested_urls(net_log: Path) -> list[str]:
    """Every URL Chromium started a request for, from its ``--log-net-log`` file."""
    text = net_log.read_text(encoding="utf-8")
    try:
        events = json.loads(text)["events"]
    except json.JSONDecodeError:            # a log cut short when the browser exits: close it
        events = json.loads(text.rstrip().rstrip(",") + "]}")["events"]
    return sorted({e["params"]["url"] for e in events if isinstance(e.get("params"), dict) and "url" in e["params"]})


# --- a page driven like a person would (type, click), through the DevTools protocol ------------------------
class Browser:
    """Headless Chromium with one tab, driven over its DevTools protocol (``websockets`` of the lock) on
    127.0.0.1: navigate, type into a field, click, read the page's text, take a screenshot."""

    def __init__(self, profile: Path, width: int = 1440, height: int = 900):
        self.profile, self.width, self.height = profile, width, height
        self._process = None
        self._socket = None
        self._id = 0

    def __enter__(self) -> "Browser":
        import time
        import urllib.request

        from websockets.sync.client import connect

        assert CHROMIUM.is_file(), "headless Chromium missing: run scripts/bootstrap.sh (installs Debian's chromium)"
        self.profile.mkdir(parents=True, exist_ok=True)
        port_file = self.profile / "DevToolsActivePort"
        port_file.unlink(missing_ok=True)
        self._process = subprocess.Popen(
            [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
             f"--window-size={self.width},{self.height}", f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + CHROMIUM_TIMEOUT_S
        while not port_file.is_file() or not port_file.read_text().strip():
            assert time.monotonic() < deadline and self._process.poll() is None, "Chromium did not start"
            time.sleep(0.2)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
            page = next(t for t in json.load(response) if t["type"] == "page")
        self._socket = connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=30)
        self.send("Emulation.setDeviceMetricsOverride", width=self.width, height=self.height,
                  deviceScaleFactor=1, mobile=False)
        return self

    def __exit__(self, *exc) -> None:
        if self._socket is not None:
            self._socket.close()
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)

    def send(self, method: str, **params):
        self._id += 1
        self._socket.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            message = json.loads(self._socket.recv(timeout=CHROMIUM_TIMEOUT_S))
            if message.get("id") == self._id:
                assert "error" not in message, message
                return message.get("result", {})

    def navigate(self, url: str) -> None:
        self.send("Page.navigate", url=url)

    def evaluate(self, expression: str):
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, what: str, timeout_s: float = 60):
        import time

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for {what}; page text:\n{self.text()[:2000]}")

    def text(self) -> str:
        return self.evaluate("document.body ? document.body.innerText : ''") or ""

    def wait_for_text(self, condition, what: str, timeout_s: float = 60) -> str:
        import time

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            text = self.text()
            if condition(text):
                time.sleep(1.0)        # let the rest of the page (badges, charts) render
                return self.text()
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for {what}; page text:\n{self.text()[:2000]}")

    def type_into(self, selector: str, text: str) -> None:
        """Focus the field and type, as keystrokes do (the page's own input handlers see it)."""
        self.wait_for(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); "
                      "if (!e) return false; e.focus(); return document.activeElement === e; })()", selector)
        self.send("Input.insertText", text=text)

    def screenshot(self, path: Path) -> None:
        import base64

        data = self.send("Page.captureScreenshot", format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
