"""SimpleSAMLphp for credd's end-to-end tests: PHP's built-in web server, tied to our stdin.

    python saml_idp_server.py HOST PORT DOCROOT

Runs `php -S HOST:PORT -t DOCROOT` with this process's environment (SIMPLESAMLPHP_CONFIG_DIR names
the test's private config) and PHP's output on our stderr. Exits with PHP's status when PHP exits
(a port another process took: the harness retries on another); stops PHP and exits when stdin
closes (the test process is gone, however it died). On Linux PHP also gets SIGKILL if this process
is killed outright, so PHP never outlives it either.
"""

import ctypes
import subprocess
import sys
import threading

HOST, PORT, DOCROOT = sys.argv[1], sys.argv[2], sys.argv[3]

PR_SET_PDEATHSIG = 1
SIGKILL = 9


def die_with_parent():
    """In the child before exec: SIGKILL when this wrapper dies (Linux only)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0)


stopping = threading.Event()


def stop_when_stdin_closes(php):
    for _ in sys.stdin:
        pass
    stopping.set()
    php.terminate()
    try:
        php.wait(timeout=5)
    except subprocess.TimeoutExpired:
        php.kill()


def main():
    php = subprocess.Popen(
        ["php", "-S", f"{HOST}:{PORT}", "-t", DOCROOT],
        stdin=subprocess.DEVNULL,
        stdout=sys.stderr,
        stderr=sys.stderr,
        preexec_fn=die_with_parent if sys.platform.startswith("linux") else None,
    )
    threading.Thread(target=stop_when_stdin_closes, args=(php,), daemon=True).start()
    status = php.wait()
    sys.exit(0 if stopping.is_set() else status)


if __name__ == "__main__":
    main()
