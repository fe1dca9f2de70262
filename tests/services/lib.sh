# Helpers shared by the scripts that run a test service in its own process group (milvus.sh,
# s3.sh, llama.sh). Source it after setting $pidfile (holds the group id) and $urlfile, and define
# `answers URL` (succeeds when the service at URL responds).

alive() {  # alive: the recorded process group still has a process
  [[ -f "$pidfile" ]] && kill -0 -- "-$(cat "$pidfile")" 2>/dev/null
}

# stop_group STEPS: TERM the recorded group, wait up to STEPS × 0.2 s for it to go, then KILL;
# forgets the pid and URL files.
stop_group() {
  if alive; then
    local pgid
    pgid="$(cat "$pidfile")"
    kill -TERM -- "-$pgid" 2>/dev/null || true
    for _ in $(seq 1 "$1"); do
      alive || break
      sleep 0.2
    done
    if alive; then kill -KILL -- "-$pgid" 2>/dev/null || true; sleep 0.5; fi
  fi
  rm -f "$pidfile" "$urlfile"
}

running_url() {  # running_url: print the URL and succeed when the recorded service is up and answers
  if alive && [[ -f "$urlfile" ]] && answers "$(cat "$urlfile")"; then
    cat "$urlfile"
    return 0
  fi
  return 1
}
