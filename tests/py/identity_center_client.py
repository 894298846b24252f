"""botocore against credd's fake IAM Identity Center, to prove the fake speaks the real wire.

    python identity_center_client.py SCENARIO '{"json": "arguments"}'

Runs one scenario with botocore's own clients (sso-oidc, sso), token provider (SSOTokenProvider)
and credential provider (boto3 profiles with sso_session), and prints one JSON object of what it
saw: for each error its exception class, whether that class is one botocore generated from the
model, the code, the HTTP status and the modeled members. Tokens are never printed.

The environment gives the endpoints: AWS_ENDPOINT_URL_SSO_OIDC and AWS_ENDPOINT_URL_SSO (the
fake), AWS_ENDPOINT_URL_STS (moto), HOME (a temp home: the token cache is
~/.aws/sso/cache/<sha1 of the session name>.json) and AWS_CONFIG_FILE.

Scenarios: device-flow, pkce, login, refresh-cache, profile-identity, role-credentials,
refresh-cached, expired-device-code, paginate, and batch (several of them in one process).
"""

import base64
import datetime
import hashlib
import http.server
import json
import os
import secrets
import stat
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

import boto3
import botocore.session
from botocore.exceptions import ClientError
from botocore.tokens import SSOTokenProvider

REGION = "us-east-1"
SCOPE = "sso:account:access"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def oidc_client():
    return boto3.session.Session().client("sso-oidc", region_name=REGION)


def portal_client():
    return boto3.session.Session().client("sso", region_name=REGION)


def rfc3339(moment):
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def error_facts(client, error):
    """What botocore made of an error answer."""
    code = error.response.get("Error", {}).get("Code")
    modeled = getattr(client.exceptions, code, None) if code else None
    return {
        "class": type(error).__name__,
        "modeled": modeled is not None and isinstance(error, modeled),
        "code": code,
        "status": error.response.get("ResponseMetadata", {}).get("HTTPStatusCode"),
        "message": error.response.get("Error", {}).get("Message"),
        "error": error.response.get("error"),
        "error_description": error.response.get("error_description"),
    }


def expect_error(client, call, **kwargs):
    """Calls, expecting a ClientError; returns its facts (or {"class": None} on success)."""
    try:
        call(**kwargs)
    except ClientError as error:
        return error_facts(client, error)
    return {"class": None}


def register_device_client(oidc):
    return oidc.register_client(clientName="credd-tests", clientType="public", scopes=[SCOPE])


def approve(verification_uri_complete):
    """The user opens the verification URL (the fake approves on GET)."""
    with urllib.request.urlopen(verification_uri_complete, timeout=10) as answer:
        return answer.status


def device_login(oidc, start_url):
    """A whole device-code login: (registration, token answer)."""
    registration = register_device_client(oidc)
    auth = oidc.start_device_authorization(
        clientId=registration["clientId"],
        clientSecret=registration["clientSecret"],
        startUrl=start_url,
    )
    approve(auth["verificationUriComplete"])
    token = oidc.create_token(
        grantType=DEVICE_GRANT,
        clientId=registration["clientId"],
        clientSecret=registration["clientSecret"],
        deviceCode=auth["deviceCode"],
    )
    return registration, token


def token_facts(token):
    return {
        "tokenType": token.get("tokenType"),
        "expiresIn": token.get("expiresIn"),
        "has_refresh_token": "refreshToken" in token,
        "access_token_prefix": token["accessToken"][:3],
    }


def device_flow(args):
    oidc = oidc_client()
    registration = register_device_client(oidc)
    client = {"clientId": registration["clientId"], "clientSecret": registration["clientSecret"]}
    out = {
        "secret_lifetime": registration["clientSecretExpiresAt"]
        - registration["clientIdIssuedAt"],
        "wrong_start_url": expect_error(
            oidc,
            oidc.start_device_authorization,
            startUrl="https://not-this-instance.awsapps.com/start",
            **client,
        ),
        "wrong_secret": expect_error(
            oidc,
            oidc.start_device_authorization,
            clientId=client["clientId"],
            clientSecret="not-the-secret",
            startUrl=args["start_url"],
        ),
    }
    auth = oidc.start_device_authorization(startUrl=args["start_url"], **client)
    out["device"] = {
        "userCode": auth["userCode"],
        "verificationUri": auth["verificationUri"],
        "verificationUriComplete": auth["verificationUriComplete"],
        "expiresIn": auth["expiresIn"],
        "interval": auth["interval"],
    }
    poll = dict(grantType=DEVICE_GRANT, deviceCode=auth["deviceCode"], **client)
    out["pending"] = expect_error(oidc, oidc.create_token, **poll)
    # Polling again at once is too fast.
    out["slow_down"] = expect_error(oidc, oidc.create_token, **poll)
    out["approval_status"] = approve(auth["verificationUriComplete"])
    # The protocol's wait: the next poll comes an interval after the last one.
    time.sleep(auth["interval"])
    out["token"] = token_facts(oidc.create_token(**poll))
    time.sleep(auth["interval"])
    out["reused"] = expect_error(oidc, oidc.create_token, **poll)
    return out


class CallbackListener:
    """The loopback redirect target of the authorization code flow, as the AWS CLI runs one."""

    def __init__(self):
        self.query = None
        self.received = threading.Event()
        listener = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                parsed = urllib.parse.urlparse(self.path)
                if parsed.path == "/oauth/callback":
                    listener.query = dict(urllib.parse.parse_qsl(parsed.query))
                    listener.received.set()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"You can close this window.")

            def log_message(self, *args):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def redirect_uri(self):
        return f"http://127.0.0.1:{self.server.server_port}/oauth/callback"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def pkce_pair():
    verifier = secrets.token_urlsafe(64)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    )
    return verifier, challenge


def browse(url):
    """A scripted user agent, as `BROWSER="curl -sL"` would be: follows the redirect."""
    done = subprocess.run(
        ["curl", "-sSL", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}", url],
        capture_output=True,
        text=True,
        timeout=20,
    )
    return {"exit": done.returncode, "final_status": done.stdout, "stderr": done.stderr}


def pkce(args):
    oidc = oidc_client()
    registration = oidc.register_client(
        clientName="credd-tests-pkce",
        clientType="public",
        scopes=[SCOPE],
        grantTypes=["authorization_code", "refresh_token"],
        # As the AWS CLI registers it: no port; the authorization names the port it listens on.
        redirectUris=["http://127.0.0.1/oauth/callback"],
        issuerUrl=args["start_url"],
    )
    client = {"clientId": registration["clientId"], "clientSecret": registration["clientSecret"]}
    out = {
        "wrong_issuer": expect_error(
            oidc,
            oidc.register_client,
            clientName="credd-tests-pkce",
            clientType="public",
            scopes=[SCOPE],
            grantTypes=["authorization_code"],
            redirectUris=["http://127.0.0.1/oauth/callback"],
            issuerUrl="https://not-this-instance.awsapps.com/start",
        ),
        "device_grant_refused": expect_error(
            oidc, oidc.start_device_authorization, startUrl=args["start_url"], **client
        ),
    }
    listener = CallbackListener()
    verifier, challenge = pkce_pair()
    state = secrets.token_hex(16)
    query = urllib.parse.urlencode(
        {
            "response_type": "code",
            "client_id": client["clientId"],
            "redirect_uri": listener.redirect_uri(),
            "state": state,
            "code_challenge_method": "S256",
            "code_challenge": challenge,
            "scopes": SCOPE,
        }
    )
    out["browser"] = browse(f"{oidc.meta.endpoint_url.rstrip('/')}/authorize?{query}")
    out["callback_received"] = listener.received.wait(10)
    listener.close()
    callback = listener.query or {}
    out["callback_keys"] = sorted(callback)
    out["state_matches"] = callback.get("state") == state
    out["callback_error"] = callback.get("error")
    if "code" not in callback:
        return out
    exchange = dict(
        grantType="authorization_code",
        code=callback["code"],
        redirectUri=listener.redirect_uri(),
        **client,
    )
    out["wrong_verifier"] = expect_error(
        oidc, oidc.create_token, codeVerifier=pkce_pair()[0], **exchange
    )
    token = oidc.create_token(codeVerifier=verifier, **exchange)
    out["token"] = token_facts(token)
    out["code_reused"] = expect_error(oidc, oidc.create_token, codeVerifier=verifier, **exchange)
    refreshed = oidc.create_token(
        grantType="refresh_token", refreshToken=token["refreshToken"], **client
    )
    out["refreshed"] = token_facts(refreshed)
    out["refresh_rotated"] = refreshed["refreshToken"] != token["refreshToken"]
    return out


def cache_path(session_name):
    digest = hashlib.sha1(session_name.encode()).hexdigest()
    return os.path.expanduser(os.path.join("~", ".aws", "sso", "cache", digest + ".json"))


def login(args):
    """Plays `aws sso login --sso-session NAME --use-device-code`: logs in through the fake and
    writes the token cache and the config as the AWS CLI v2 does."""
    oidc = oidc_client()
    registration, token = device_login(oidc, args["start_url"])
    issued = now()
    cache = {
        "startUrl": args["start_url"],
        "region": REGION,
        "accessToken": token["accessToken"],
        "expiresAt": rfc3339(issued + datetime.timedelta(seconds=token["expiresIn"])),
        "clientId": registration["clientId"],
        "clientSecret": registration["clientSecret"],
        "registrationExpiresAt": rfc3339(
            datetime.datetime.fromtimestamp(
                registration["clientSecretExpiresAt"], datetime.timezone.utc
            )
        ),
        "refreshToken": token["refreshToken"],
    }
    path = cache_path(args["session"])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        json.dump(cache, f)
    profiles = "".join(
        f"\n[profile {name}]\nsso_session = {args['session']}\n"
        f"sso_account_id = {role['account']}\nsso_role_name = {role['role']}\nregion = {REGION}\n"
        for name, role in args.get("profiles", {}).items()
    )
    with open(os.environ["AWS_CONFIG_FILE"], "w") as f:
        f.write(
            f"[sso-session {args['session']}]\nsso_start_url = {args['start_url']}\n"
            f"sso_region = {REGION}\nsso_registration_scopes = {SCOPE}\n{profiles}"
        )
    return {"cache_file": path, "expiresIn": token["expiresIn"]}


def read_cache(session_name):
    with open(cache_path(session_name)) as f:
        return json.load(f)


def refresh_cache(args):
    """botocore's SSOTokenProvider reads the cache, refreshes a token in its window through the
    fake, and writes the result back."""
    before = read_cache(args["session"])
    session = botocore.session.Session(profile=args["profile"])
    frozen = SSOTokenProvider(session).load_token().get_frozen_token()
    after = read_cache(args["session"])
    mode = stat.S_IMODE(os.stat(cache_path(args["session"])).st_mode)
    oidc = oidc_client()
    return {
        "token_changed": frozen.token != before["accessToken"],
        "cache_has_the_new_token": after["accessToken"] == frozen.token,
        "refresh_rotated": after.get("refreshToken") not in (None, before["refreshToken"]),
        "written_keys": sorted(after),
        "expiresAt": after["expiresAt"],
        "expiration_in": (frozen.expiration - now()).total_seconds(),
        "kept": {
            k: after.get(k) == before.get(k)
            for k in ("startUrl", "region", "clientId", "clientSecret", "registrationExpiresAt")
        },
        "mode": oct(mode),
        "old_refresh_token": expect_error(
            oidc,
            oidc.create_token,
            grantType="refresh_token",
            clientId=before["clientId"],
            clientSecret=before["clientSecret"],
            refreshToken=before["refreshToken"],
        ),
    }


def profile_identity(args):
    """A boto3 program on an Identity Center profile: credentials through GetRoleCredentials,
    then STS (moto, auth on) with them."""
    session = boto3.session.Session(profile_name=args["profile"])
    try:
        credentials = session.get_credentials().get_frozen_credentials()
    except Exception as error:  # noqa: BLE001 - the class is the finding
        return {"credentials_error": type(error).__name__, "message": str(error)}
    identity = session.client("sts", region_name=REGION).get_caller_identity()
    return {
        "arn": identity["Arn"],
        "method": session.get_credentials().method,
        "has_session_token": bool(credentials.token),
    }


def role_credentials(args):
    cached = read_cache(args["session"])
    sso = portal_client()
    token = args.get("token", cached["accessToken"])
    try:
        answer = sso.get_role_credentials(
            roleName=args["role"], accountId=args["account"], accessToken=token
        )
    except ClientError as error:
        return error_facts(sso, error)
    credentials = answer["roleCredentials"]
    return {
        "class": None,
        "keys": sorted(credentials),
        "expires_in": credentials["expiration"] / 1000 - time.time(),
    }


def refresh_cached(args):
    """CreateToken with the cached refresh token, as a refresher would."""
    cached = read_cache(args["session"])
    oidc = oidc_client()
    return expect_error(
        oidc,
        oidc.create_token,
        grantType="refresh_token",
        clientId=cached["clientId"],
        clientSecret=cached["clientSecret"],
        refreshToken=cached["refreshToken"],
    )


def expired_device_code(args):
    oidc = oidc_client()
    registration = register_device_client(oidc)
    client = {"clientId": registration["clientId"], "clientSecret": registration["clientSecret"]}
    auth = oidc.start_device_authorization(startUrl=args["start_url"], **client)
    poll = dict(grantType=DEVICE_GRANT, deviceCode=auth["deviceCode"], **client)
    seen = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        facts = expect_error(oidc, oidc.create_token, **poll)
        seen.append(facts["code"])
        if facts["code"] != "AuthorizationPendingException":
            return {"expiresIn": auth["expiresIn"], "seen": seen, "last": facts}
        time.sleep(auth["interval"])
    return {"expiresIn": auth["expiresIn"], "seen": seen, "last": None}


def paginate(args):
    cached = read_cache(args["session"])
    sso = portal_client()
    token = cached["accessToken"]
    pages = list(sso.get_paginator("list_accounts").paginate(accessToken=token))
    accounts = [a for page in pages for a in page["accountList"]]
    roles = {}
    role_pages = {}
    for account in accounts:
        account_pages = list(
            sso.get_paginator("list_account_roles").paginate(
                accessToken=token, accountId=account["accountId"]
            )
        )
        role_pages[account["accountId"]] = len(account_pages)
        roles[account["accountId"]] = [
            r["roleName"] for page in account_pages for r in page["roleList"]
        ]
    capped = sso.list_accounts(accessToken=token, maxResults=1)
    return {
        "accounts": accounts,
        "account_pages": len(pages),
        "roles": roles,
        "role_pages": role_pages,
        "max_results_1": len(capped["accountList"]),
        "bad_next_token": expect_error(
            sso, sso.list_accounts, accessToken=token, nextToken="not-a-token"
        ),
    }


def batch(args):
    """Several scenarios in one process (one interpreter start): [[scenario, args], ...]."""
    return [SCENARIOS[scenario](scenario_args) for scenario, scenario_args in args]


SCENARIOS = {
    "device-flow": device_flow,
    "pkce": pkce,
    "login": login,
    "refresh-cache": refresh_cache,
    "profile-identity": profile_identity,
    "role-credentials": role_credentials,
    "refresh-cached": refresh_cached,
    "expired-device-code": expired_device_code,
    "paginate": paginate,
    "batch": batch,
}


def main():
    scenario, raw_args = sys.argv[1], sys.argv[2]
    result = SCENARIOS[scenario](json.loads(raw_args))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
