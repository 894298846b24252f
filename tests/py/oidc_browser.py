"""A scripted browser for the tests' OpenID provider (tests/js/oidc_provider.mjs): a user who signs
in and consents (or cancels), with plain HTTP requests and a cookie jar, following the provider's
own pages.

    python oidc_browser.py [--login NAME] [--deny] [--log FILE] URL
    python oidc_browser.py [--login NAME] [--deny] [--log FILE] --device VERIFICATION_URI USER_CODE

The first form is the authorization code flow, and what credd's `$BROWSER` runs: it opens URL
(the authorization request), signs in with NAME (any password), consents (or, with --deny,
presses Cancel on the consent page), follows the provider's redirects to the loopback
`redirect_uri` and opens that too, as a browser would: that is credd's own callback server.
The second form is the device flow's user side: it enters USER_CODE at VERIFICATION_URI,
confirms, signs in and consents (or cancels).

NAME defaults to $OIDC_LOGIN, else "alice". Prints one JSON object on stdout:
    {"outcome": "callback", "url": ..., "status": ..., "body": ...}   the redirect_uri answered
    {"outcome": "approved"} / {"outcome": "denied"}                   the device flow ended so
    {"outcome": "error", "error": ...}                                anything else (exit 1)
With --log FILE, every step is appended there too (credd starts its browser detached, so this
is the only place a failure inside credd's own login shows).
"""

import argparse
import http.cookiejar
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

from html_page import Page

# A walk longer than this is going in circles.
MAX_STEPS = 20
# Seconds any one request may take.
TIMEOUT = 10


class Walk:
    """One user agent: a cookie jar, redirects followed by hand, each step logged."""

    def __init__(self, log_path):
        self.log_path = log_path
        self.steps = []
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), NoRedirects()
        )

    def log(self, line):
        self.steps.append(line)
        if self.log_path:
            with open(self.log_path, "a", encoding="utf-8") as log:
                log.write(line + "\n")

    def fetch(self, url, form=None):
        """GET (or POST `form`) without following redirects: (status, headers, body, url)."""
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        self.log(f"{'POST' if data is not None else 'GET'} {url}")
        request = urllib.request.Request(url, data=data)
        try:
            with self.opener.open(request, timeout=TIMEOUT) as response:
                status, headers, body = response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            status, headers, body = error.code, error.headers, error.read()
        except (urllib.error.URLError, OSError) as error:
            raise Failure(f"{url} could not be reached: {error}") from None
        self.log(f"  -> {status} {headers.get('Location', '')}".rstrip())
        return status, headers, body.decode("utf-8", "replace"), url


class NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Failure(Exception):
    pass


def same_endpoint(url, redirect_uri):
    """Whether `url` goes to `redirect_uri` (scheme, host, port and path; any query)."""
    a, b = urllib.parse.urlsplit(url), urllib.parse.urlsplit(redirect_uri)
    return (a.scheme, a.netloc, a.path) == (b.scheme, b.netloc, b.path)


def walk(user, start_url, login, deny, device_code=None):
    """Acts on each page the provider shows until the flow ends; returns the outcome object."""
    redirect_uri = None
    if device_code is None:
        start_url = authorization_url(user, start_url)
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(start_url).query)
        redirect_uri = (query.get("redirect_uri") or [None])[0]
        if not redirect_uri:
            raise Failure(f"the authorization URL has no redirect_uri: {start_url}")
    code_entered = False
    status, headers, body, url = user.fetch(start_url)
    for _ in range(MAX_STEPS):
        if 300 <= status < 400:
            target = urllib.parse.urljoin(url, headers.get("Location", ""))
            if redirect_uri and same_endpoint(target, redirect_uri):
                # The provider is done: the browser opens the loopback callback, credd's server.
                status, _, body, _ = user.fetch(target)
                return {"outcome": "callback", "url": target, "status": status, "body": body}
            status, headers, body, url = user.fetch(target)
            continue
        page = Page(body)
        if status >= 400:
            raise Failure(f"the provider answered {status} at {url}: {page.summary()}")
        step = next_step(page, url, login, deny, device_code, code_entered)
        if isinstance(step, dict):
            return step
        target, form = step
        if form is not None and "user_code" in form and device_code is not None:
            code_entered = True
        status, headers, body, url = user.fetch(target, form)
    raise Failure(f"no end after {MAX_STEPS} steps")


def authorization_url(user, url):
    """The authorization request behind credd's start page (`http://127.0.0.1:PORT/oauth/start`,
    what credd hands the browser so that no secret of the login is in its argv), or `url`."""
    if urllib.parse.urlsplit(url).path != "/oauth/start":
        return url
    status, headers, body, _ = user.fetch(url)
    if status != 303 or not headers.get("Location"):
        raise Failure(f"credd's start page answered {status}, not a redirect: {body[:200]}")
    return headers["Location"]


def next_step(page, url, login, deny, device_code, code_entered):
    """What the user does on this page: (url, form fields or None for a GET), or the outcome."""
    title = page.title.strip()
    login_form = page.form(lambda f: f["fields"].get("prompt") == "login")
    if login_form:
        fields = dict(login_form["fields"], login=login, password="any password")
        return urllib.parse.urljoin(url, login_form["action"]), fields
    consent_form = page.form(lambda f: f["fields"].get("prompt") == "consent")
    if consent_form:
        if deny:
            cancel = next((link for link in page.links if link.rstrip("/").endswith("/abort")), None)
            if not cancel:
                raise Failure(f"the consent page has no Cancel link: {page.summary()}")
            return urllib.parse.urljoin(url, cancel), None
        return urllib.parse.urljoin(url, consent_form["action"]), dict(consent_form["fields"])
    code_form = page.form(lambda f: f["id"] == "op.deviceInputForm")
    if code_form and device_code is not None:
        if code_entered:
            # The provider shows the code form again, with why.
            if any("interrupted" in t for t in page.texts):
                return {"outcome": "denied"}
            raise Failure(f"the provider did not take user code {device_code!r}: {page.summary()}")
        fields = dict(code_form["fields"], user_code=device_code)
        return urllib.parse.urljoin(url, code_form["action"]), fields
    confirm_form = page.form(lambda f: f["id"] == "op.deviceConfirmForm")
    if confirm_form:
        return urllib.parse.urljoin(url, confirm_form["action"]), dict(confirm_form["fields"])
    if device_code is not None and title == "Sign-in Success":
        return {"outcome": "approved"}
    # A page that posts itself on load (response_mode=form_post, a verification_uri_complete).
    if len(page.forms) == 1 and page.forms[0]["method"] == "post":
        only = page.forms[0]
        return urllib.parse.urljoin(url, only["action"]), dict(only["fields"])
    raise Failure(f"an unexpected page at {url}: {page.summary()}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--login", default=os.environ.get("OIDC_LOGIN") or "alice")
    parser.add_argument("--deny", action="store_true", help="press Cancel on the consent page")
    parser.add_argument("--log", help="append each step to this file")
    parser.add_argument("--device", nargs=2, metavar=("VERIFICATION_URI", "USER_CODE"))
    parser.add_argument("url", nargs="?", help="the authorization request")
    args = parser.parse_args()
    if (args.url is None) == (args.device is None):
        parser.error("give either URL or --device VERIFICATION_URI USER_CODE")
    user = Walk(args.log)
    try:
        if args.device:
            uri, code = args.device
            outcome = walk(user, uri, args.login, args.deny, device_code=code)
        else:
            outcome = walk(user, args.url, args.login, args.deny)
    except Failure as failure:
        steps = "\n".join(user.steps)
        outcome = {"outcome": "error", "error": f"{failure}\nsteps:\n{steps}"}
    if args.log:
        with open(args.log, "a", encoding="utf-8") as log:
            log.write(json.dumps(outcome) + "\n")
    print(json.dumps(outcome))
    return 1 if outcome["outcome"] == "error" else 0


if __name__ == "__main__":
    sys.exit(main())
