# shellcheck shell=bash
# smtp.sh: the real SMTP server of the mail tests (aiosmtpd,
# python3-aiosmtpd; ../shared/TESTING.md), sourced after lib.sh by each
# test that mails: free_port, port_open, smtp_start, smtp_stop.

if ! "$PYTHON" -c 'import aiosmtpd' 2>/dev/null; then
    echo "python3-aiosmtpd is not installed (apt-get install -y python3-aiosmtpd)" >&2
    exit 1
fi

# free_port: a TCP port free on 127.0.0.1 right now.
free_port() {
    "$PYTHON" -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# port_open PORT: something accepts connections on 127.0.0.1:PORT.
# shellcheck disable=SC2317 # called through wait_for's eval
port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# smtp_start PORT MAILDIR [HANDLER]: aiosmtpd on PORT; mails land in
# MAILDIR/new (MAILDIR is created by aiosmtpd's Mailbox: it must not exist,
# or already be a maildir). With HANDLER (module.Class from tests/e2e), that
# handler instead. Sets SMTP_PID; waits until the port accepts.
SMTP_PID=""
smtp_start() {
    local port=$1 maildir=$2 handler=${3:-}
    if [ -n "$handler" ]; then
        PYTHONPATH=$PV_SOURCE_DIR/tests/e2e "$PYTHON" -m aiosmtpd -n -l "127.0.0.1:$port" \
            -c "$handler" >>"$T/smtp-$port.log" 2>&1 &
    else
        "$PYTHON" -m aiosmtpd -n -l "127.0.0.1:$port" \
            -c aiosmtpd.handlers.Mailbox "$maildir" >>"$T/smtp-$port.log" 2>&1 &
    fi
    SMTP_PID=$!
    BG_PIDS+=("$SMTP_PID")
    if ! wait_for "port_open $port" 10; then
        echo "aiosmtpd did not start on port $port:" >&2
        cat "$T/smtp-$port.log" >&2
        exit 1
    fi
}

# smtp_stop PID PORT: stops the server and waits until the port refuses.
smtp_stop() {
    kill -TERM "$1" 2>/dev/null
    wait_for "! kill -0 $1" 10 || kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    wait_for "! port_open $2" 10 || fail "port $2 still open after stopping the server"
}
