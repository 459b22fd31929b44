# Helpers sourced by the scripts in this folder.

# venv DIR CHECK PACKAGE...: a Python venv in DIR holding PACKAGE...,
# (re)installed unless the command CHECK already succeeds in it.
venv() {
  local dir=$1 check=$2
  shift 2
  if (cd "$dir" 2>/dev/null && eval "$check") >/dev/null 2>&1; then
    return 0
  fi
  echo "installing $* into $dir"
  if ! python3 -m venv "$dir" 2>/dev/null; then
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$dir"
  fi
  "$dir/bin/pip" install --quiet --disable-pip-version-check "$@"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_port PORT [SECONDS]: until something listens on 127.0.0.1:PORT.
wait_port() {
  local port=$1 tries=$((${2:-30} * 10))
  for _ in $(seq "$tries"); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
