#!/usr/bin/env bash
# Install what xenfab and its rehearsal lab need: openssh-server (for the lab's sshd) and a
# virtualenv in .venv with xenfab and its test tools. Safe to run again; it skips what is done.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! [ -x /usr/sbin/sshd ] && ! command -v sshd >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing openssh-server (the lab runs a real sshd on loopback)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server >/dev/null
  else
    echo "setup: openssh-server is missing; install it (Debian: sudo apt-get install openssh-server)" >&2
    exit 1
  fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  if ! "$PY" -m venv .venv 2>/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      rm -rf .venv && "$PY" -m venv .venv
    else
      echo "setup: '$PY -m venv' failed; install python3-venv" >&2
      exit 1
    fi
  fi
fi

# Reinstall only when the package definition changed since the last setup.
stamp=.venv/.xenfab-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  log=.venv/setup.log
  if ! .venv/bin/python -m pip install -q -e '.[test]' >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    echo "setup: pip install failed (full log: $log)" >&2
    exit 1
  fi
  echo "$want" > "$stamp"
fi

# Byte-compile xenfab (an editable install is source only): where PYTHONDONTWRITEBYTECODE is set,
# every `fab` would otherwise compile the whole package again (about 0.1 s of CPU each time, and
# the suite runs `fab` hundreds of times). compileall writes the caches whatever that variable says.
.venv/bin/python -m compileall -q -j 0 xenfab tasks.py fabfile.py >/dev/null
