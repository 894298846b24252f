// The AWS SDK for JavaScript v3 client of credd's end-to-end tests (tests/src/sdk.rs installs it
// once into target/js-sdk-client with `npm ci`). The STS client takes its credentials from the
// default chain as a tool's would (environment, shared files and their credential_process, the
// container route, IMDS), then asks STS who it is at AWS_ENDPOINT_URL_STS.
//
//   node client.mjs         one call: one JSON line, exit 0 (1 with the error on stderr)
//   node client.mjs follow  one client for the whole process, one call per line read on stdin,
//                           one JSON line each ({"error": ...} when a call fails)
//
// A line is {"arn", "provider" (the credential features the SDK records in `$source`), "expiry"
// (Unix seconds or null), "account_id" (the accountId the credentials carry, or null)}.
import { createInterface } from "node:readline";
import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";

const endpoint = process.env.AWS_ENDPOINT_URL_STS;
if (!endpoint) {
  console.error("js-sdk-client: AWS_ENDPOINT_URL_STS is not set");
  process.exit(1);
}
const follow = process.argv.length === 3 && process.argv[2] === "follow";
if (process.argv.length > 2 && !follow) {
  console.error("usage: node client.mjs [follow]");
  process.exit(2);
}

const sts = new STSClient({
  region: process.env.AWS_REGION || "us-east-1",
  endpoint,
  // Bounds every call, so a hung daemon fails the test instead of hanging it.
  requestHandler: { requestTimeout: 20000, connectionTimeout: 20000 },
});

async function call() {
  const identity = await sts.send(new GetCallerIdentityCommand({}));
  // The memoized credentials the call just used: no new fetch.
  const credentials = await sts.config.credentials();
  return {
    arn: identity.Arn,
    provider: credentials.$source ? Object.keys(credentials.$source).join(",") : null,
    expiry: credentials.expiration ? Math.floor(credentials.expiration.getTime() / 1000) : null,
    account_id: credentials.accountId ?? null,
  };
}

if (!follow) {
  try {
    console.log(JSON.stringify(await call()));
  } catch (e) {
    console.error(`js-sdk-client: ${e}`);
    process.exit(1);
  }
} else {
  for await (const _ of createInterface({ input: process.stdin })) {
    let line;
    try {
      line = await call();
    } catch (e) {
      line = { error: String(e) };
    }
    console.log(JSON.stringify(line));
  }
}
