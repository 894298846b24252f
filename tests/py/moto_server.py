"""moto for credd's end-to-end tests: moto's server, plus a seeding channel on stdin.

    python moto_server.py HOST PORT on|off

Serves moto on HOST:PORT with request authentication on (every request's SigV4 signature and
session token are checked, from the first request) or off. Meanwhile it reads one JSON request per
line on stdin and answers each with one JSON line on stdout:

    {"account": "400000000001",
     "users": [{"name": "alice", "mfa": true, "key_age_days": 120,
                "deny_assume": ["arn:aws:iam::222222222222:role/Forbidden"]}],
     "roles": [{"arn": "arn:aws:iam::222222222222:role/team/Auditor"}],
     "organization": {"management": true} | {"member_of": "400000000002"}}
 -> {"users": {"alice": {"access_key_id": ..., "secret_access_key": ..., "arn": ...,
                         "mfa_serial": "arn:aws:iam::400000000001:mfa/alice"}}}
 or {"error": "the traceback"}

Users (each with an access key, backdated by `key_age_days` when given, an optional enabled
virtual MFA device, and a policy allowing sts:*, iam:* and organizations' Describe*/List*) are
created in `account`; moto later finds the account from the user's key. `deny_assume` adds a
policy denying sts:AssumeRole on those roles (moto's auth then refuses it, as IAM would). `organization` makes
`account` the management account of a new organization, or a member of one whose management
account is `member_of` (created there unless it exists), as moto's own CreateAccount records it.
Roles (anyone may assume them; they allow sts:* and iam:*) are created in the account their ARN
names, and kept if they exist: the tests of one process share them. Requests are handled one at
a time, so a role is complete before anyone is told it exists.

Seeding writes to moto's backends directly instead of calling the IAM API: with authentication
on, the API would need credentials in each new account before anything exists there. The tests'
own requests still go through the API and all of its checks.

When stdin closes (the test process exited, however it died), the server exits as well.
"""

import datetime
import json
import os
import sys
import threading
import traceback

HOST, PORT, AUTH = sys.argv[1], sys.argv[2], sys.argv[3]
if AUTH not in ("on", "off"):
    raise SystemExit(f"auth must be on or off, not {AUTH!r}")
# moto reads this once, when imported: no unauthenticated requests at all.
if AUTH == "on":
    os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"

from moto.iam.exceptions import NotFoundException  # noqa: E402
from moto.iam.models import iam_backends  # noqa: E402
from moto.organizations.models import FakeAccount, organizations_backends  # noqa: E402
from moto.organizations import utils as organizations_utils  # noqa: E402
from moto.server import main as serve  # noqa: E402

PARTITION = "aws"
REGION = "us-east-1"

# Identity policy for every seeded user and role: enough for STS (and IAM).
ALLOW_STS = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["sts:*", "iam:*", "organizations:Describe*", "organizations:List*"],
                "Resource": "*",
            }
        ],
    }
)

# Anyone may assume a seeded role: with auth on, moto checks trust policies on chained calls.
TRUST_ANYONE = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"],
            }
        ],
    }
)


def iam(account):
    if not (len(account) == 12 and account.isdigit()):
        raise ValueError(f"not an account id: {account!r}")
    return iam_backends[account][PARTITION]


def parse_role_arn(arn):
    """arn:aws:iam::ACCOUNT:role/optional/path/Name -> (account, path, name)."""
    parts = arn.split(":", 5)
    well_formed = len(parts) == 6 and parts[0] == "arn" and parts[2] == "iam"
    if not well_formed or not parts[5].startswith("role/"):
        raise ValueError(f"not an IAM role ARN: {arn!r}")
    segments = parts[5].split("/")[1:]
    if not segments or not segments[-1]:
        raise ValueError(f"role ARN has no role name: {arn!r}")
    return parts[4], "/" + "".join(s + "/" for s in segments[:-1]), segments[-1]


def seed_user(backend, spec):
    name = spec["name"]
    user = backend.create_user(REGION, name, "/")
    backend.put_user_policy(name, "credd-tests-allow-sts", ALLOW_STS)
    if spec.get("deny_assume"):
        deny = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Deny", "Action": "sts:AssumeRole", "Resource": spec["deny_assume"]}
            ],
        }
        backend.put_user_policy(name, "credd-tests-deny-assume", json.dumps(deny))
    key = backend.create_access_key(name)
    if spec.get("key_age_days"):
        key.create_date = key.create_date - datetime.timedelta(days=spec["key_age_days"])
    mfa_serial = None
    if spec.get("mfa"):
        device = backend.create_virtual_mfa_device(name, "/")
        mfa_serial = device.serial_number
        backend.enable_mfa_device(name, mfa_serial, "123456", "654321")
    return {
        "access_key_id": key.access_key_id,
        "secret_access_key": key.secret_access_key,
        "arn": user.arn,
        "mfa_serial": mfa_serial,
    }


def seed_role(arn):
    account, path, name = parse_role_arn(arn)
    backend = iam(account)
    try:
        role = backend.get_role(name)
    except NotFoundException:
        role = backend.create_role(name, TRUST_ANYONE, path, None, "", [], "3600")
        backend.put_role_policy(name, "credd-tests-allow-sts", ALLOW_STS)
    if role.arn != arn:
        raise ValueError(f"moto has {role.arn!r} for the requested {arn!r}")


def organizations(account):
    return organizations_backends[account][PARTITION]


def seed_organization(account, spec):
    if spec.get("management"):
        organizations(account).create_organization(region=REGION, FeatureSet="ALL")
        return
    master = spec["member_of"]
    iam(master)  # checks it is an account ID
    backend = organizations(master)
    if backend.org is None:
        backend.create_organization(region=REGION, FeatureSet="ALL")
    # What CreateAccount does, with the seeded account's ID instead of a random one.
    member = FakeAccount(backend.org, AccountName=f"member-{account}", Email=f"{account}@example.com")
    member.id = account
    backend.accounts.append(member)
    for policy_id in (organizations_utils.DEFAULT_SCP_POLICY_ID, organizations_utils.DEFAULT_RCP_POLICY_ID):
        backend.attach_policy(PolicyId=policy_id, TargetId=account)
    organizations_backends.master_accounts[account] = (master, PARTITION)


def seed(request):
    for role in request.get("roles", []):
        seed_role(role["arn"])
    if request.get("organization"):
        seed_organization(request["account"], request["organization"])
    backend = iam(request["account"])
    users = {user["name"]: seed_user(backend, user) for user in request.get("users", [])}
    return {"users": users}


def answer_seed_requests(answers):
    for line in sys.stdin:
        try:
            answer = seed(json.loads(line))
        except Exception:  # noqa: BLE001 - the test that asked shows it
            answer = {"error": traceback.format_exc()}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()
    # stdin closed: whoever started us is gone.
    os._exit(0)


def main():
    # Answers get the real stdout; anything else printed goes to the log (stderr).
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    threading.Thread(target=answer_seed_requests, args=(answers,), daemon=True).start()
    serve(["-H", HOST, "-p", PORT])


if __name__ == "__main__":
    main()
