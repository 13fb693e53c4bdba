#!/usr/bin/env bash
# Try lever from your own IRC client before pointing it at your network: starts a private
# ngIRCd on 127.0.0.1 (port 6667, or $PORT) and lever in it with the shipped bot.toml.
# Then connect irssi/weechat to 127.0.0.1, /join #ops, and say !help. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."

port="${PORT:-6667}"
command -v ngircd >/dev/null 2>&1 || [ -x /usr/sbin/ngircd ] || scripts/setup.sh
ngircd_bin=$(command -v ngircd || echo /usr/sbin/ngircd)

dir=$(mktemp -d)
chmod 755 "$dir" # ngircd drops root privileges to `nobody`
cat > "$dir/ngircd.conf" <<CONF
[Global]
	Name = irc.lever.local
	Info = lever try-out server
	Listen = 127.0.0.1
	Ports = $port
	MotdPhrase = "lever try-out: /join #ops and say !help"
[Limits]
	MaxConnectionsIP = 0
	MaxNickLength = 30
[Options]
	DNS = no
	Ident = no
	PAM = no
CONF

"$ngircd_bin" -n -f "$dir/ngircd.conf" >"$dir/ngircd.log" 2>&1 &
ngircd_pid=$!
trap 'kill $ngircd_pid 2>/dev/null; rm -rf "$dir"' EXIT

for _ in $(seq 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done

cargo build --release -q
echo "ngircd is on 127.0.0.1:$port. Connect your IRC client there, /join #ops, and say !help."
echo "lever's log follows; Ctrl-C stops lever and the server."
LEVER_IRC__PORT="$port" RUST_LOG="${RUST_LOG:-info}" target/release/lever run --config bot.toml
