#!/usr/bin/env bash
# CI check of the Docker image and compose.yaml, with podman (no Docker engine
# or registry needed):
#   1. base images made locally (scripts/container-base-images.sh);
#   2. the Dockerfile built unchanged: targets runtime, demo-sshd, demo-client;
#   3. compose.yaml's scenario (seed 001) run in a network namespace of its own,
#      so neither podman's bridge rules nor the daemon's table touch the host's
#      firewall: the daemon turns healthy, the client cannot reach SSH on 2222,
#      knocks 1234 5678 9012, then gets the SSH banner;
#   4. everything it made removed (containers, networks, netns, the images it
#      built or tagged, base images it created), also on failure or Ctrl-C.
# Needs root, podman, runc, mmdebstrap, npm. Prints "container-test: ok" and
# each phase's duration. Idempotent: a second run starts from the same state.
# Environment: KNOCKWATCH_KEEP_IMAGES=1 keeps every image it made (faster reruns).
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"

say() { echo "container-test: $*" >&2; }
[ "$(id -u)" -eq 0 ] || { say "needs root (rootful podman, network namespaces)"; exit 2; }
for tool in podman runc mmdebstrap npm ip nsenter; do
  command -v "$tool" >/dev/null || { say "needs '$tool' (Debian: podman runc mmdebstrap; see scripts/setup.sh)"; exit 2; }
done

run_id="kwct$$"
project="$run_id"
netns="$run_id"
export KNOCKWATCH_TAG="$run_id"
work="$(mktemp -d)"
images_before="$work/images-before"
started=$SECONDS

# podman settings for this run only (the host's containers.conf is not
# changed): runc (crun fails on these machines' cgroups), no default ulimits
# (setrlimit is refused in some CI sandboxes), no systemd or journald needed,
# and no network unless a command names one: podman's default bridge would add
# rules to the firewall of whatever namespace podman runs in.
cat >"$work/containers.conf" <<'EOF'
[containers]
default_ulimits = []
netns = "none"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
export CONTAINERS_CONF="$work/containers.conf"

cleanup() {
  local status=$?
  set +e
  say "cleaning up"
  nsenter --net="/run/netns/$netns" node "$repo/scripts/compose-podman.mjs" down -p "$project" -f "$repo/compose.yaml" >/dev/null 2>&1
  # Whatever the runner missed (a failed `up` half-way), by our label.
  podman ps -aq --filter "label=io.knockwatch.compose.project=$project" | xargs -r podman rm -f >/dev/null 2>&1
  ip netns del "$netns" 2>/dev/null
  # CNI's address bookkeeping outlives `podman network rm`.
  rm -rf "/var/lib/cni/networks/$project-"*
  if [ "${KNOCKWATCH_KEEP_IMAGES:-0}" != 1 ]; then
    for t in knockwatch knockwatch-demo-sshd knockwatch-demo-client; do podman rmi -f "localhost/$t:$run_id" >/dev/null 2>&1; done
    # Every image that appeared during this run: build stages, base images.
    if [ -f "$images_before" ]; then
      podman images -aq --no-trunc | sort -u | comm -13 "$images_before" - | xargs -r podman rmi -f >/dev/null 2>&1
    fi
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

podman images -aq --no-trunc | sort -u >"$images_before"

phase=$SECONDS
bash scripts/container-base-images.sh >/dev/null
say "base images ready in $((SECONDS - phase)) s"

# npm inside the build must trust this machine's CA bundle; mounted at build
# time only, so the Dockerfile stays what a Docker user builds.
printf 'cafile=/etc/ssl/certs/ca-certificates.crt\n' >"$work/npmrc"
build() {
  nice -n 19 podman build --format docker --network host --pull=never \
    -v /etc/ssl/certs:/etc/ssl/certs:ro -v "$work/npmrc:/usr/local/etc/npmrc:ro" \
    --target "$1" -t "localhost/$2:$run_id" -f Dockerfile .
}
phase=$SECONDS
build runtime knockwatch
build demo-sshd knockwatch-demo-sshd
build demo-client knockwatch-demo-client
say "image build (3 targets) in $((SECONDS - phase)) s"

# Like a user's checkout: the bind-mounted config belongs to someone else than
# root (here nobody), mode 0644; compose.yaml's `--config-owner any` must let
# the root daemon accept it, and the daemon must say so.
install -o nobody -g nogroup -m 0644 deploy/compose/knockwatch.yaml "$work/knockwatch.yaml"
export KNOCKWATCH_CONFIG="$work/knockwatch.yaml"

phase=$SECONDS
ip netns add "$netns"
ip -n "$netns" link set lo up
# nsenter --net, not `ip netns exec`: that also remounts /sys, which hides the
# cgroup mounts runc needs ("no cgroup mount found in mountinfo").
in_ns() { nsenter --net="/run/netns/$netns" "$@"; }
in_ns node scripts/compose-podman.mjs up -p "$project" -f compose.yaml

# Healthy = the daemon created its table (HEALTHCHECK in the Dockerfile). Without
# systemd, podman cannot schedule the check itself ("unable to get systemd
# connection to add healthchecks" above is that, and harmless): run it here.
deadline=$((SECONDS + 60))
until in_ns podman healthcheck run "$project-knockwatch" >/dev/null 2>&1; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    say "knockwatch did not turn healthy within 60 s; its log:"; in_ns podman logs "$project-knockwatch" >&2; exit 1
  fi
  sleep 1
done
say "knockwatch healthy after $((SECONDS - phase)) s"

# One TCP connection to sshd from the client: 'banner' (SSH-2.0-...) or why not.
# The SSH server speaks first, so a banner proves the connection really got through.
probe_js='
const s = require("node:net").connect({ host: "172.20.0.40", port: 2222 });
const done = (r) => { console.log(r); s.destroy(); process.exit(0); };
s.setTimeout(2000, () => done(s.connecting ? "timeout" : "no-banner"));
s.on("data", (d) => done(String(d).startsWith("SSH-") ? "banner" : "other"));
s.on("error", (e) => done(e.code));'
probe() { in_ns podman exec "$project-client" node -e "$probe_js"; }

before="$(probe)"
[ "$before" = timeout ] || { say "before knocking, 2222 answered '$before' (expected: dropped, timeout)"; exit 1; }
say "before the knock: 2222 dropped (timeout)"

in_ns podman exec "$project-client" node /app/dist/cli.js knock 172.20.0.40 1234 5678 9012
deadline=$((SECONDS + 15))
while after="$(probe)"; [ "$after" != banner ]; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    say "after knocking, 2222 still says '$after'; knockwatch log:"; in_ns podman logs "$project-knockwatch" >&2; exit 1
  fi
done
say "after the knock: SSH banner on 2222"
in_ns podman logs "$project-knockwatch" 2>&1 | grep -m1 '"access opened"' >&2 || { say "no 'access opened' in the knockwatch log"; exit 1; }
in_ns podman logs "$project-knockwatch" 2>&1 | grep -m1 'accepted (--config-owner any)' >&2 || { say "no --config-owner log line"; exit 1; }
say "compose scenario in $((SECONDS - phase)) s"
say "ok (total $((SECONDS - started)) s)"
