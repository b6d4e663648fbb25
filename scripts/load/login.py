"""Sign in to a running Matchmaker and print the session cookie as ``name=value`` for the load client.

The cookie is read from the raw Set-Cookie header, so its ``Secure`` attribute (production mode) does not
stop a plain-http client on loopback; nothing in the app's configuration is relaxed for the load test.
"""
from __future__ import annotations

import http.client
import re
import sys
import urllib.parse


def _cookies(response) -> dict[str, str]:
    jar = {}
    for header, value in response.getheaders():
        if header.lower() == "set-cookie":
            name, _, rest = value.partition("=")
            jar[name.strip()] = rest.split(";", 1)[0]
    return jar


def login(host: str, port: int, email: str, password: str, timeout: float = 30.0, forwarded: str = "") -> str:
    """``forwarded``: the client address a reverse proxy would pass on (X-Forwarded-For, with
    X-Forwarded-Proto https), for a server that trusts one proxy hop; empty sends neither header."""
    proxy = {"X-Forwarded-For": forwarded, "X-Forwarded-Proto": "https"} if forwarded else {}
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    conn.request("GET", "/login?lang=en", headers=proxy)
    page = conn.getresponse()
    body = page.read().decode("utf-8", "replace")
    jar = _cookies(page)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', body)
    if page.status != 200 or not token:
        raise SystemExit(f"login page: HTTP {page.status}, csrf token {'found' if token else 'missing'}")
    form = urllib.parse.urlencode({"csrf_token": token.group(1), "email": email, "password": password})
    # over https (as the proxy says) Flask-WTF checks that the Referer is this site, as a browser sends it
    referer = {"Referer": f"https://{host}:{port}/login"} if forwarded else {}
    headers = {**proxy, **referer, "Content-Type": "application/x-www-form-urlencoded",
               "Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())}
    conn.request("POST", "/login", body=form, headers=headers)
    done = conn.getresponse()
    done.read()
    jar.update(_cookies(done))
    if done.status not in (302, 303):
        raise SystemExit(f"login refused: HTTP {done.status} for {email}")
    return "; ".join(f"{k}={v}" for k, v in jar.items())


if __name__ == "__main__":
    if len(sys.argv) != 5:
        raise SystemExit("usage: login.py HOST PORT EMAIL PASSWORD")
    print(login(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]))
