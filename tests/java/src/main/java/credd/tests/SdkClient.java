package credd.tests;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Optional;
import software.amazon.awssdk.auth.credentials.AwsCredentials;
import software.amazon.awssdk.auth.credentials.AwsSessionCredentials;
import software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.sts.StsClient;

/**
 * The AWS SDK for Java v2 client of credd's end-to-end tests (tests/src/sdk.rs builds it once into
 * target/java-sdk-client). It takes credentials from the default chain as a tool would
 * (DefaultCredentialsProvider: system properties, environment, shared files and their
 * credential_process, the container route, IMDS), then asks STS who it is at
 * AWS_ENDPOINT_URL_STS.
 *
 * <p>No argument: one call, one JSON line, exit 0 (1 with the error on stderr). {@code follow}:
 * one provider and one client for the whole process, one call per line read on stdin, one JSON
 * line each ({"error": ...} when a call fails). A line is {"arn", "provider" (the credentials'
 * providerName), "expiry" (Unix seconds or null), "account_id" (the AccountId the credentials
 * carry, or null)}.
 */
public final class SdkClient {
    private final DefaultCredentialsProvider provider;
    private final StsClient sts;

    private SdkClient() {
        String endpoint = System.getenv("AWS_ENDPOINT_URL_STS");
        if (endpoint == null || endpoint.isEmpty()) {
            throw new IllegalStateException("AWS_ENDPOINT_URL_STS is not set");
        }
        String region = Optional.ofNullable(System.getenv("AWS_REGION")).orElse("us-east-1");
        provider = DefaultCredentialsProvider.builder().build();
        sts = StsClient.builder()
                .region(Region.of(region))
                .credentialsProvider(provider)
                .endpointOverride(URI.create(endpoint))
                .overrideConfiguration(c -> c.apiCallTimeout(Duration.ofSeconds(20)))
                .build();
    }

    private String call() {
        String arn = sts.getCallerIdentity().arn();
        // What the call just used: the provider's cache answers without a new fetch.
        AwsCredentials credentials = provider.resolveCredentials();
        String expiry = "null";
        if (credentials instanceof AwsSessionCredentials session) {
            expiry = session.expirationTime().map(t -> Long.toString(t.getEpochSecond())).orElse("null");
        }
        return "{\"arn\":" + quote(arn)
                + ",\"provider\":" + credentials.providerName().map(SdkClient::quote).orElse("null")
                + ",\"expiry\":" + expiry
                + ",\"account_id\":" + credentials.accountId().map(SdkClient::quote).orElse("null")
                + "}";
    }

    private static String quote(String s) {
        StringBuilder out = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') {
                out.append('\\').append(c);
            } else if (c < 0x20) {
                out.append(String.format("\\u%04x", (int) c));
            } else {
                out.append(c);
            }
        }
        return out.append('"').toString();
    }

    public static void main(String[] args) throws Exception {
        boolean follow = args.length == 1 && args[0].equals("follow");
        if (args.length > 0 && !follow) {
            System.err.println("usage: java-sdk-client [follow]");
            System.exit(2);
        }
        SdkClient client;
        try {
            client = new SdkClient();
        } catch (RuntimeException e) {
            System.err.println("java-sdk-client: " + e);
            System.exit(1);
            return;
        }
        if (!follow) {
            try {
                System.out.println(client.call());
            } catch (RuntimeException e) {
                System.err.println("java-sdk-client: " + e);
                System.exit(1);
            }
            System.exit(0);
        }
        BufferedReader lines = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        while (lines.readLine() != null) {
            String line;
            try {
                line = client.call();
            } catch (RuntimeException e) {
                line = "{\"error\":" + quote(e.toString()) + "}";
            }
            System.out.println(line);
            System.out.flush();
        }
        System.exit(0);
    }
}
