"""The `assertion_command` of credd's SAML tests: logs in to the test IdP, prints the SAMLResponse.

    python3 saml_assertion.py IDP_URL LOGIN (--password-env NAME | --password-file PATH)
                              [--count-file PATH] [--delay-ms N]

Starts an IdP-initiated login for AWS (IDP_URL/saml2/idp/SSOService.php?spentityid=
urn:amazon:webservices) with a fresh cookie jar, submits the IdP's login form with LOGIN and the
password, and prints the base64 SAMLResponse of the form the IdP answers with (as the IdP wrote
it, one line) on stdout, and nothing else. The password never goes on the command line: it is read
from the environment variable NAME or from the first line of the file PATH.

--count-file PATH: first of all, append one line (LOGIN) to PATH, so a test can count the runs.
--delay-ms N: then wait N ms before logging in, to hold a run open while others arrive.

On failure (wrong password, IdP down or misbehaving) it exits 1 and the last line of stderr is a
one-line reason: credd shows that line to the user. Python's stdlib only.
"""

import argparse
import http.cookiejar
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from html_page import Page

SP_ENTITY_ID = "urn:amazon:webservices"
TIMEOUT_SECONDS = 10


class Failure(Exception):
    """A reason to give up, said in one line."""


def error_message(page):
    """SimpleSAMLphp's error box: a heading "Error", then the message."""
    for i, text in enumerate(page.texts[:-1]):
        if text == "Error":
            return page.texts[i + 1]
    return None


def fetch(opener, url, form=None):
    """GET url (or POST form to it), following redirects: (final url, body)."""
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    what = f"{'POST' if form is not None else 'GET'} {url}"
    try:
        with opener.open(url, data=data, timeout=TIMEOUT_SECONDS) as answer:
            return answer.geturl(), answer.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        page = Page(e.read().decode("utf-8", "replace"))
        detail = error_message(page) or page.title or e.reason
        raise Failure(f"the IdP answered HTTP {e.code} to {what}: {detail}") from None
    except urllib.error.URLError as e:
        raise Failure(f"cannot reach the IdP at {url}: {e.reason}") from None
    except OSError as e:
        raise Failure(f"cannot reach the IdP at {url}: {e}") from None


def read_password(args):
    if args.password_env is not None:
        password = os.environ.get(args.password_env)
        if password is None:
            raise Failure(f"no password: the environment variable {args.password_env} is not set")
        return password
    try:
        with open(args.password_file, encoding="utf-8") as f:
            return f.readline().rstrip("\r\n")
    except OSError as e:
        raise Failure(f"no password: cannot read {args.password_file}: {e.strerror}") from None


def count_run(path, login):
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(login + "\n")
    except OSError as e:
        raise Failure(f"cannot count this run in {path}: {e.strerror}") from None


def saml_response(idp_url, login, password):
    # No proxies from the environment: the IdP is on loopback.
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}),
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
    )
    start = (
        idp_url.rstrip("/")
        + "/saml2/idp/SSOService.php?"
        + urllib.parse.urlencode({"spentityid": SP_ENTITY_ID})
    )
    url, body = fetch(opener, start)
    page = Page(body)
    login_form = page.form_with("password")
    if login_form is None:
        raise Failure(f"the IdP showed no login form at {url} ({page.title or 'no title'})")
    fields = dict(login_form["fields"])
    fields["username"] = login
    fields["password"] = password
    url, body = fetch(opener, urllib.parse.urljoin(url, login_form["action"]), fields)
    page = Page(body)
    answer = page.form_with("SAMLResponse")
    if answer is not None:
        return answer["fields"]["SAMLResponse"]
    if page.form_with("password") is not None:
        reason = error_message(page) or "it showed the login form again"
        raise Failure(f"the IdP refused the login of {login}: {reason}")
    raise Failure(f"the IdP's answer to the login of {login} has no SAMLResponse ({page.title})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("idp_url")
    parser.add_argument("login")
    password = parser.add_mutually_exclusive_group(required=True)
    password.add_argument("--password-env", metavar="NAME")
    password.add_argument("--password-file", metavar="PATH")
    parser.add_argument("--count-file", metavar="PATH")
    parser.add_argument("--delay-ms", metavar="N", type=int, default=0)
    args = parser.parse_args()
    try:
        if args.count_file:
            count_run(args.count_file, args.login)
        password = read_password(args)
        if args.delay_ms > 0:
            time.sleep(args.delay_ms / 1000)
        response = saml_response(args.idp_url, args.login, password)
    except Failure as failure:
        print(f"saml_assertion: {failure}", file=sys.stderr)
        sys.exit(1)
    print(response)


if __name__ == "__main__":
    main()
