# A login session whose session keyring another user shares, as `sudo -u other` from a desktop
# login does: joins a session keyring of its own and links the user keyring into it (as
# pam_keyinit does at login), forks a process that becomes uid 65534 but keeps that session
# keyring, then runs COMMAND (credd-daemon) in its place.
#
# The other user waits for TRIGGER to exist, then looks for the key DESCRIPTION in every keyring
# it can reach from the session keyring and tries to read it; it writes one JSON line to RESULT:
#   {"found": KEY_ID or null, "search_error": ERRNO or null, "read": TEXT or null,
#    "read_error": ERRNO or null}
#   argv: TRIGGER RESULT DESCRIPTION -- COMMAND...
import ctypes, json, os, sys, time

trigger, result, description = sys.argv[1], sys.argv[2], sys.argv[3]
assert sys.argv[4] == "--"
command = sys.argv[5:]

libc = ctypes.CDLL(None, use_errno=True)
SYS_KEYCTL = {"x86_64": 250, "aarch64": 219}[os.uname().machine]
JOIN_SESSION_KEYRING, LINK, SEARCH, READ = 1, 8, 10, 11
SESSION, USER = -3, -4


def keyctl(*args):
    converted = [a if isinstance(a, (bytes, ctypes.Array)) or a is None else ctypes.c_long(a) for a in args]
    r = libc.syscall(ctypes.c_long(SYS_KEYCTL), *converted)
    return r, (ctypes.get_errno() if r < 0 else None)


r, e = keyctl(JOIN_SESSION_KEYRING, None)
if r < 0:
    sys.exit("cannot join a new session keyring: errno %d" % e)
r, e = keyctl(LINK, USER, SESSION)
if r < 0:
    sys.exit("cannot link the user keyring into the session keyring: errno %d" % e)

if os.fork() == 0:
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
    deadline = time.monotonic() + 120
    while not os.path.exists(trigger) and time.monotonic() < deadline:
        time.sleep(0.05)
    out = {"found": None, "search_error": None, "read": None, "read_error": None}
    key, out["search_error"] = keyctl(SEARCH, SESSION, b"user", description.encode(), 0)
    if key >= 0:
        out["found"] = key
        buf = ctypes.create_string_buffer(4096)
        n, out["read_error"] = keyctl(READ, key, buf, 4096)
        if n >= 0:
            out["read"] = buf.raw[:n].decode("utf-8", "replace")
    with open(result, "w") as f:
        f.write(json.dumps(out) + "\n")
    os._exit(0)

os.execv(command[0], command)
