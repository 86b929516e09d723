"""smtp_silent: a server that accepts connections and never says a word.

    /usr/bin/python3 tests/e2e/smtp_silent.py PORT LOG

An SMTP client waits for a greeting that never comes. LOG gets 'listening'
once bound, then 'accepted N' per connection and 'closed N' when the client
gives up and closes it. Stopped by SIGTERM.
"""
import socket
import sys
import threading


def note(path, text):
    with open(path, "a", encoding="utf-8") as f:
        f.write(text + "\n")


def hold(conn, n, log):
    try:
        while conn.recv(4096):
            pass
    except OSError:
        pass
    conn.close()
    note(log, "closed %d" % n)


def main():
    port, log = int(sys.argv[1]), sys.argv[2]
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(16)
    note(log, "listening")
    n = 0
    while True:
        conn, _ = s.accept()
        n += 1
        note(log, "accepted %d" % n)
        threading.Thread(target=hold, args=(conn, n, log), daemon=True).start()


if __name__ == "__main__":
    main()
