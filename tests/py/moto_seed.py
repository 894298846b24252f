"""Seed a running moto server for credd's end-to-end tests.

Reads a JSON spec on stdin, creates IAM users (with access keys, optional virtual MFA) in moto's
default account and roles in their own accounts, optionally turns request authentication on, and
prints the users' keys as JSON on stdout. Run with the harness venv's python (boto3 installed).

    {"users": [{"name": "alice", "mfa": true}],
     "roles": [{"arn": "arn:aws:iam::222222222222:role/Administrator"}],
     "auth": true}
"""

import argparse
import json
import sys
import urllib.request

import boto3

DEFAULT_ACCOUNT = "123456789012"
REGION = "us-east-1"

# Identity policy for every seeded user and role: enough for STS (and IAM, for further seeding).
ALLOW_STS = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["sts:*", "iam:*"], "Resource": "*"}],
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


def client(endpoint, service, key="testing", secret="testing", token=None):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        aws_session_token=token,
    )


def parse_role_arn(arn):
    """arn:aws:iam::ACCOUNT:role/optional/path/Name -> (account, path, name)."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "iam" or not parts[5].startswith("role/"):
        raise SystemExit(f"not an IAM role ARN: {arn!r}")
    account = parts[4]
    segments = parts[5].split("/")[1:]
    if not segments or not segments[-1]:
        raise SystemExit(f"role ARN has no role name: {arn!r}")
    name = segments[-1]
    path = "/" + "".join(s + "/" for s in segments[:-1])
    return account, path, name


def iam_in_account(endpoint, account, cache):
    """An IAM client acting in `account`; moto picks the account from the caller's credentials."""
    if account in cache:
        return cache[account]
    if account == DEFAULT_ACCOUNT:
        iam = client(endpoint, "iam")
    else:
        # While auth is off, assuming any role ARN in an account (it need not exist) yields
        # credentials that moto attributes to that account.
        creds = client(endpoint, "sts").assume_role(
            RoleArn=f"arn:aws:iam::{account}:role/credd-seed", RoleSessionName="credd-seed"
        )["Credentials"]
        iam = client(
            endpoint, "iam", creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]
        )
    cache[account] = iam
    return iam


def seed_user(iam, spec):
    name = spec["name"]
    user = iam.create_user(UserName=name)["User"]
    iam.put_user_policy(UserName=name, PolicyName="credd-tests-allow-sts", PolicyDocument=ALLOW_STS)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    mfa_serial = None
    if spec.get("mfa"):
        device = iam.create_virtual_mfa_device(VirtualMFADeviceName=name)["VirtualMFADevice"]
        mfa_serial = device["SerialNumber"]
        iam.enable_mfa_device(
            UserName=name,
            SerialNumber=mfa_serial,
            AuthenticationCode1="123456",
            AuthenticationCode2="654321",
        )
    return {
        "access_key_id": key["AccessKeyId"],
        "secret_access_key": key["SecretAccessKey"],
        "arn": user["Arn"],
        "mfa_serial": mfa_serial,
    }


def seed_role(iam, path, name):
    role = iam.create_role(RoleName=name, Path=path, AssumeRolePolicyDocument=TRUST_ANYONE)["Role"]
    iam.put_role_policy(RoleName=name, PolicyName="credd-tests-allow-sts", PolicyDocument=ALLOW_STS)
    return role["Arn"]


def enable_auth(endpoint):
    request = urllib.request.Request(
        endpoint.rstrip("/") + "/moto-api/reset-auth",
        data=b"0",
        headers={"Content-Type": "text/plain"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        if response.status != 200:
            raise SystemExit(f"reset-auth answered {response.status}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", required=True, help="moto's URL, e.g. http://127.0.0.1:5000")
    args = parser.parse_args()
    spec = json.load(sys.stdin)

    iams = {}
    users = {}
    for user in spec.get("users", []):
        users[user["name"]] = seed_user(iam_in_account(args.endpoint, DEFAULT_ACCOUNT, iams), user)
    roles = {}
    for role in spec.get("roles", []):
        account, path, name = parse_role_arn(role["arn"])
        created = seed_role(iam_in_account(args.endpoint, account, iams), path, name)
        if created != role["arn"]:
            raise SystemExit(f"moto created {created!r}, expected {role['arn']!r}")
        roles[role["arn"]] = {"account": account}
    if spec.get("auth"):
        enable_auth(args.endpoint)

    json.dump({"users": users, "roles": roles}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
