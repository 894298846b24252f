// The owner's Java program using credd as its IMDS: Java opens IPv6 (dual-stack) sockets by
// default, so its connection to 127.0.0.1 is an AF_INET6 socket the kernel lists as
// ::ffff:127.0.0.1. Prints the status of the token PUT and of the role listing.
// argv: BASE_URL (http://127.0.0.1:PORT)
import java.io.InputStream;
import java.net.HttpURLConnection;
import java.net.URL;

public class DualStackImds {
    public static void main(String[] args) throws Exception {
        HttpURLConnection put = (HttpURLConnection) new URL(args[0] + "/latest/api/token").openConnection();
        put.setRequestMethod("PUT");
        put.setRequestProperty("X-aws-ec2-metadata-token-ttl-seconds", "60");
        int status = put.getResponseCode();
        System.out.println("token " + status);
        if (status != 200) {
            return;
        }
        String token;
        try (InputStream in = put.getInputStream()) {
            token = new String(in.readAllBytes());
        }
        HttpURLConnection list = (HttpURLConnection) new URL(
                args[0] + "/latest/meta-data/iam/security-credentials/").openConnection();
        list.setRequestProperty("X-aws-ec2-metadata-token", token);
        System.out.println("list " + list.getResponseCode());
        try (InputStream in = list.getInputStream()) {
            System.out.println("role " + new String(in.readAllBytes()));
        }
    }
}
