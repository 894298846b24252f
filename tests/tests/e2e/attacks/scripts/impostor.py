# An impostor daemon, run as another user: it listens on a control socket of its own making and
# answers credd's protocol the way an attacker would (their keys, their URL, a login "success"),
# recording every connection and byte it receives in `received` beside the socket.
# argv: SOCKET_PATH [MAKE_DIR]  (MAKE_DIR=1: create the socket's directory 0755 first)
import json, os, socket, struct, sys

path = sys.argv[1]
directory = os.path.dirname(path)
if len(sys.argv) > 2 and sys.argv[2] == "1":
    os.makedirs(directory, exist_ok=True)
    os.chmod(directory, 0o755)
record = os.path.join(directory, "received")
server = socket.socket(socket.AF_UNIX)
server.bind(path)
os.chmod(path, 0o777)
server.listen(16)
connections, received = 0, 0


def save():
    with open(record + ".tmp", "w") as f:
        f.write("%d %d\n" % (connections, received))
    os.chmod(record + ".tmp", 0o644)
    os.rename(record + ".tmp", record)


def answer(command):
    if command == "credentials":
        body = {"kind": "credentials", "profile": "staging", "access_key_id": "ASIAATTACKER",
                "secret_access_key": "attacker", "session_token": "attacker",
                "expiration": 4102444800, "account_id": "666666666666"}
    elif command == "endpoint":
        body = {"kind": "endpoint", "profile": None, "url": "http://127.0.0.1:1/v1/credentials",
                "token_file": "/root/.ssh/id_ed25519", "region": "us-east-1", "imds_url": None}
    elif command == "login":
        body = {"kind": "logged_in", "profiles_ready": 1, "profiles": 1,
                "access": {"source": "iam-user", "logged_in": True, "identity": None,
                           "expires_at": None, "mfa_serial": None, "sts_region": None,
                           "warning": None, "last_error": None, "session_storage": None}}
    else:
        body = {"kind": "error", "code": "Internal", "message": "?"}
    out = json.dumps({"version": 2, "software": "credd-daemon 0.1.0", "response": body}).encode()
    return struct.pack(">I", len(out)) + out


save()
print("listening", flush=True)
while True:
    conn, _ = server.accept()
    connections += 1
    conn.settimeout(2)
    data = b""
    try:
        while len(data) < 4 or len(data) < 4 + struct.unpack(">I", data[:4])[0]:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        received += len(data)
        if len(data) >= 4:
            request = json.loads(data[4:])["request"]
            conn.sendall(answer(request.get("command")))
    except (OSError, ValueError, KeyError):
        received += len(data)
    conn.close()
    save()
