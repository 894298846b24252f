# A local user flooding credd's HTTP port, as the security review did.
#   argv: HOST PORT MODE N SECONDS [--until-stdin-closes]
#   keepalive: N keep-alive connections, each sending GET /healthz every 3 s
#   idle:      N connections that send nothing (the daemon's header timeout closes them)
#   imds:      N connections pipelining IMDS token PUTs as fast as the socket takes them
# Every connection the daemon closes (or refuses) is opened again at once. Prints `started` once
# its connections are open, and one JSON line of counts at the end: after SECONDS, or, with
# --until-stdin-closes, as soon as its stdin closes (a test stops it once it has measured).
import json, selectors, socket, sys, time

host, port, mode, n, seconds = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
until_stdin_closes = sys.argv[6:] == ["--until-stdin-closes"]
healthz = ("GET /healthz HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (host, port)).encode()
put = ("PUT /latest/api/token HTTP/1.1\r\nHost: %s:%d\r\n"
       "X-aws-ec2-metadata-token-ttl-seconds: 60\r\nContent-Length: 0\r\n\r\n" % (host, port)).encode()
pipeline = put * 64
stats = {"connects": 0, "connect_failures": 0, "closed_by_daemon": 0, "answers": 0, "requests": 0}
sel = selectors.DefaultSelector()
due = {}


def open_one():
    s = socket.socket()
    s.settimeout(1)
    try:
        s.connect((host, port))
    except OSError:
        stats["connect_failures"] += 1
        s.close()
        return
    s.setblocking(False)
    stats["connects"] += 1
    events = selectors.EVENT_READ | (selectors.EVENT_WRITE if mode == "imds" else 0)
    sel.register(s, events)
    due[s] = time.monotonic() if mode == "keepalive" else float("inf")


def reopen(s):
    sel.unregister(s)
    del due[s]
    s.close()
    stats["closed_by_daemon"] += 1
    open_one()


for _ in range(n):
    open_one()
if until_stdin_closes:
    sel.register(sys.stdin, selectors.EVENT_READ)
print("started", flush=True)
end = time.monotonic() + seconds
stopped = False
while time.monotonic() < end and not stopped:
    now = time.monotonic()
    for s in [s for s, t in due.items() if t <= now]:
        try:
            s.send(healthz)
            stats["requests"] += 1
            due[s] = now + 3
        except OSError:
            reopen(s)
    for key, events in sel.select(timeout=0.05):
        s = key.fileobj
        if s is sys.stdin:
            stopped = not sys.stdin.buffer.read1(4096)
            continue
        if s not in due:
            continue
        if events & selectors.EVENT_WRITE:
            try:
                sent = s.send(pipeline)
                stats["requests"] += sent // len(put)
            except BlockingIOError:
                pass
            except OSError:
                reopen(s)
                continue
        if events & selectors.EVENT_READ:
            try:
                data = s.recv(1 << 16)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                reopen(s)
            else:
                stats["answers"] += data.count(b"HTTP/1.1 ")
print(json.dumps(stats), flush=True)
