# shellcheck shell=bash
# Shared by the scripts that start servers (test.sh, schemathesis.sh): a private network
# namespace with only loopback, and free ports on 127.0.0.1. Source it after defining
# log() and die().

# enter_netns VAR SELF WHY ARGS... — re-executes SELF inside `unshare -n` with VAR=1; where
# that is not possible (or CGS_NO_NETNS=1) it warns with WHY and goes on with VAR=host.
enter_netns() {
  local var="$1" self="$2" why="$3"
  shift 3
  if [[ "${CGS_NO_NETNS:-0}" != "1" ]] && unshare -n -- true 2>/dev/null; then
    log "entering a private network namespace (unshare -n)"
    exec env "$var=1" unshare -n -- bash "$self" "$@"
  fi
  if [[ "${CGS_NO_NETNS:-0}" != "1" ]]; then
    log "WARNING: cannot create a network namespace (unshare -n needs root or user namespaces);"
    log "WARNING: $why"
  fi
  export "$var=host"
}

# loopback_up VALUE — inside a fresh namespace (VALUE 1) the loopback interface starts down.
loopback_up() {
  if [[ "$1" == "1" ]]; then
    ip link set lo up 2>/dev/null || die "cannot bring up lo in the namespace (need iproute2 'ip')"
  fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
