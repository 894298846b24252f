# One HTTP request, as whoever runs it; prints what came back, on one line:
#   `answer STATUS CODE` (CODE: the JSON error code, or `-`), or `no answer: WHY` when the
#   connection was refused, reset or closed without a byte.
#   argv: HOST PORT PATH [HEADER: VALUE ...]
import json, socket, sys

host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
headers = "".join(h + "\r\n" for h in sys.argv[4:])
request = "GET %s HTTP/1.1\r\nHost: %s:%d\r\n%sConnection: close\r\n\r\n" % (path, host, port, headers)
try:
    s = socket.create_connection((host, port), timeout=10)
    s.sendall(request.encode())
    answer = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        answer += chunk
except OSError as e:
    print("no answer: %s" % e.__class__.__name__)
    sys.exit(0)
if not answer:
    print("no answer: closed")
    sys.exit(0)
head, _, body = answer.partition(b"\r\n\r\n")
status = head.split(b" ")[1].decode()
try:
    code = json.loads(body).get("code", "-")
except ValueError:
    code = "-"
print("answer %s %s" % (status, code))
