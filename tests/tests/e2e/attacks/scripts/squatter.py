# Another user's program on the port of a credd-daemon that is down (restarting, upgraded):
# answers every request as credd would, with credentials of its own choosing, and records the
# Authorization header each request brought.
#   argv: PORT RECORD_FILE
# Prints `listening` once bound (or `taken: WHY` when it could not bind), then serves until killed.
import json, socket, sys

port, record = int(sys.argv[1]), sys.argv[2]
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    listener.bind(("127.0.0.1", port))
except OSError as e:
    print("taken: %s" % e.__class__.__name__, flush=True)
    sys.exit(0)
listener.listen(16)
print("listening", flush=True)
body = json.dumps({
    "AccessKeyId": "ASIAMALLORY", "SecretAccessKey": "mallory", "Token": "mallory",
    "Expiration": "2099-01-01T00:00:00Z", "AccountId": "666666666666",
}).encode()
while True:
    conn, _ = listener.accept()
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    for line in data.split(b"\r\n"):
        if line.lower().startswith(b"authorization:"):
            with open(record, "a") as f:
                f.write(line.split(b":", 1)[1].strip().decode() + "\n")
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                 b"Connection: close\r\n\r\n%s" % (len(body), body))
    conn.close()
