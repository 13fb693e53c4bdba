#!/usr/bin/env bash
# Installs what lever's tests need on a Debian/Ubuntu machine with a Rust toolchain:
# the IRC servers they start (ngircd; inspircd + atheme-services for the flood and SASL tests),
# the interpreters of the shipped plugins (python3 with tomllib, perl with JSON::PP) and the
# rustfmt/clippy components, PostgreSQL's server (the store's second engine; the tests start
# a private cluster of their own), and OpenFeature's own Python SDK with its OFREP and flagd
# providers (PyPI, in a virtualenv of the tests' own: the flag tests' clients), and Debian's
# chromium with its chromedriver and nginx (the deploy page's browser tests, nginx as the proxy
# that signs people in). Does nothing for what is already there.
set -euo pipefail

need=()
command -v ngircd >/dev/null 2>&1 || [ -x /usr/sbin/ngircd ] || need+=(ngircd)
[ -x /usr/sbin/inspircd ] || need+=(inspircd)
command -v atheme-services >/dev/null 2>&1 || need+=(atheme-services)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
python3 -c 'import tomllib' >/dev/null 2>&1 || need+=(python3)
perl -MJSON::PP -MTime::Local -e1 >/dev/null 2>&1 || need+=(perl)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
[ -x /usr/sbin/nginx ] || need+=(nginx-light)

if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${need[*]}"
  $sudo apt-get update -qq
  # Debian starts packaged daemons on install unless told not to; the tests run their own.
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  for svc in ngircd inspircd atheme-services prometheus prometheus-alertmanager postgresql nginx; do
    $sudo systemctl disable --now "$svc" >/dev/null 2>&1 || $sudo service "$svc" stop >/dev/null 2>&1 || true
  done
fi

if command -v rustup >/dev/null 2>&1; then
  for component in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$component" || rustup component add "$component"
  done
fi

# The flag tests' clients: OpenFeature's SDK and providers, pinned, where tests/flags.rs looks
# (not a LEVER_* variable: lever reads every one of those as a config key).
venv="${OPENFEATURE_TEST_VENV:-$HOME/.cache/lever/test-venv}"
if ! "$venv/bin/python" -c 'import openfeature.contrib.provider.ofrep, openfeature.contrib.provider.flagd' >/dev/null 2>&1; then
  echo "setup: installing OpenFeature's Python SDK and providers in $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check \
    openfeature-sdk==0.10.0 openfeature-provider-ofrep==0.3.0 openfeature-provider-flagd==0.6.1
fi
