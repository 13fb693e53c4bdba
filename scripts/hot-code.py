#!/usr/bin/env python3
"""Writes link/hot-functions.txt: the functions a running lever executes.

Starts a private ngIRCd on a free loopback port, lever's release binary under valgrind's
callgrind with instrumentation off, and a client. Once lever has joined, instrumentation goes
on for what a working lever does: idle time (its clocks, the server's PING and its own),
people joining, talking, changing nick and leaving, !ping in the channel and in private, a
stage and a deploy, !status, !log, !help, !whoami, !version, a hold and its lift. Every function callgrind saw run is listed, sorted;
build.rs hands the list to the linker so that code shares pages (see link/README.md).

Run after changes that move lever's hot code (the list is matched by symbol name, so renamed
or new functions are simply not placed): `cargo build --release && scripts/hot-code.py`.
Needs valgrind and ngircd. Standard library only.
"""
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "link", "hot-functions.txt")
LEVER = os.path.join(ROOT, "target", "release", "lever")
IDLE_S = 75  # longer than every periodic check lever runs (1 s, 5 s, its 60 s keepalive)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ngircd_binary():
    for path in ("/usr/sbin/ngircd", shutil.which("ngircd")):
        if path and os.path.exists(path):
            return path
    sys.exit("ngircd is missing: run scripts/setup.sh")


def config(port):
    steps = "".join(
        f'[[targets.site.{kind}]]\nname = "{kind} {i}"\nrun = ["/bin/true"]\n'
        for kind in ("stage", "deploy")
        for i in (1, 2)
    )
    return (
        f'[irc]\nserver = "127.0.0.1"\nport = {port}\ntls = false\nnickname = "lever"\n'
        f'channels = ["#ops"]\nline_interval = "0s"\n[store]\npath = "lever.db"\n'
        f'[targets.site]\nannounce = "steps"\n{steps}'
    )


class Client:
    def __init__(self, port, nick="hotcode"):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.file = self.sock.makefile("rb")
        self.send(f"NICK {nick}")
        self.send(f"USER {nick} 0 * :hot code")
        self.send("JOIN #ops")

    def send(self, line):
        self.sock.sendall((line + "\r\n").encode())

    def wait(self, pattern, within=120):
        self.sock.settimeout(within)
        deadline = time.time() + within
        while time.time() < deadline:
            line = self.file.readline().decode(errors="replace").rstrip("\r\n")
            if not line:
                sys.exit("the IRC server closed the connection")
            if line.startswith("PING"):
                self.send("PONG" + line[4:])
            elif re.search(pattern, line):
                return line
        sys.exit(f"no line matching {pattern!r} within {within} s")

    def command(self, text, reply):
        self.send(f"PRIVMSG #ops :{text}")
        return self.wait(r"^:lever!\S+ PRIVMSG #ops :" + reply)


def callgrind(*args):
    subprocess.run(["callgrind_control", *args], check=True, capture_output=True)


def main():
    if not shutil.which("valgrind"):
        sys.exit("valgrind is missing: apt-get install valgrind")
    if not os.path.exists(LEVER):
        sys.exit("build first: cargo build --release")
    work = tempfile.mkdtemp(prefix="lever-hot-")
    os.chmod(work, 0o755)  # ngIRCd drops root privileges to read its config
    port = free_port()
    with open(os.path.join(work, "ngircd.conf"), "w") as f:
        f.write(
            f"[Global]\n\tName = irc.hot.local\n\tInfo = hot\n\tListen = 127.0.0.1\n"
            f'\tPorts = {port}\n\tMotdPhrase = "hot"\n[Limits]\n\tMaxConnectionsIP = 0\n'
            f"\tMaxNickLength = 30\n\tMaxPenaltyTime = 0\n[Options]\n\tDNS = no\n\tIdent = no\n"
            f"\tPAM = no\n"
        )
    with open(os.path.join(work, "bot.toml"), "w") as f:
        f.write(config(port))
    server = subprocess.Popen(
        [ngircd_binary(), "-n", "-f", os.path.join(work, "ngircd.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    lever = None
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port)).close()
                break
            except OSError:
                time.sleep(0.05)
        client = Client(port)
        client.wait(r" 366 ")  # joined #ops
        out = os.path.join(work, "callgrind.out")
        lever = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--demangle=no",
             f"--callgrind-out-file={out}", LEVER, "run", "--config", "bot.toml"],
            cwd=work,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={k: v for k, v in os.environ.items() if not k.upper().startswith("LEVER_")},
        )
        client.wait(r"^:lever!\S+ JOIN")
        time.sleep(2)  # start-up settles (replays, the first clock ticks)
        callgrind("--instr=on", str(lever.pid))
        time.sleep(IDLE_S)
        for _ in range(50):
            client.command("!ping", "pong$")
        # Channel life around lever: someone comes, talks, is renamed, leaves, comes back, quits.
        other = Client(port, "visitor")
        other.wait(r" 366 ")
        other.send("PRIVMSG #ops :morning all")
        other.send("NICK visitor2")
        other.send("PART #ops :brb")
        other.send("JOIN #ops")
        other.wait(r" 366 ")
        other.send("PRIVMSG lever :!ping")
        other.wait(r"^:lever!\S+ PRIVMSG visitor2 :pong")
        other.send("QUIT :bye")
        for _ in range(20):
            client.command("!ping", "pong$")
        client.command("!stage site", r"site staged by")
        client.command("!deploy site", r"site deployed by")
        client.command("!stage site", r"site staged by")
        for text in ("!status", "!log", "!help", "!whoami", "!version"):
            client.command(text, "")
        client.command("!hold site checking", "NO DEPLOY PLEASE")
        client.command("!deploy site", r"site deployed by")  # through its own hold
        client.command("!unhold site", "DEPLOY OK")
        time.sleep(IDLE_S / 2)
        callgrind("--dump", str(lever.pid))
        dumps = [f for f in os.listdir(work) if f.startswith("callgrind.out.")]
        if not dumps:
            sys.exit("callgrind wrote no dump")
        names = set()
        with open(os.path.join(work, sorted(dumps)[-1]), errors="replace") as f:
            for line in f:
                m = re.match(r"^c?fn=\(\d+\) (\S+)$", line.rstrip("\n"))
                # callgrind marks recursion depth with 'N; hex names are code without a symbol.
                if m and "'" not in m.group(1) and not m.group(1).startswith("0x"):
                    names.add(m.group(1))
    finally:
        if lever:
            lever.terminate()
            lever.wait(timeout=60)
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        f.write("".join(name + "\n" for name in sorted(names)))
    print(f"{len(names)} functions written to {os.path.relpath(OUT, ROOT)}")


if __name__ == "__main__":
    main()
