# syntax=docker/dockerfile:1
# knockwatch image. Build tools (for the `cap` addon and the eBPF program) live
# only in the build stage; the runtime stage has libpcap, nftables, iptables.
# Node 24 LTS, pinned to an exact release so a rebuild gets the same runtime.
#   docker build -t knockwatch .          (podman: add --format docker, or the
#                                          HEALTHCHECK is dropped from the image)
# scripts/container-test.sh builds this file unchanged and runs compose.yaml's scenario.
ARG NODE_VERSION=24.22.3

FROM node:${NODE_VERSION}-bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libpcap-dev python3 make g++ pkg-config \
      clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev linux-libc-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-fund --no-audit
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY ebpf ./ebpf
# dist/ (tsc) and build/ebpf/ (the tc/XDP program and its loader), then drop
# the dev dependencies so only runtime ones are copied on.
RUN npm run build && npm run build:ebpf && npm prune --omit=dev --no-fund --no-audit

FROM node:${NODE_VERSION}-bookworm-slim AS runtime
# tini as PID 1 reaps the nft/iptables/loader children and forwards SIGTERM,
# so `docker stop` gets the daemon's clean shutdown (its rules removed).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      tini libpcap0.8 nftables iptables iproute2 libbpf1 libelf1 zlib1g \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/build/ebpf ./build/ebpf
COPY deploy/compose/knockwatch.yaml /etc/knockwatch/knockwatch.yaml
# Healthy = the daemon's firewall objects exist in this network namespace: the
# nftables table `inet knockwatch`, or the iptables chain KNOCKWATCH. The daemon
# creates them only after it has accepted its config, and removes them on a clean
# stop, so this asks the daemon's state, not just "a process runs".
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["sh", "-c", "nft list table inet knockwatch >/dev/null 2>&1 || iptables -n -L KNOCKWATCH >/dev/null 2>&1"]
ENTRYPOINT ["tini", "--", "node", "/app/dist/cli.js"]
CMD ["run", "--config", "/etc/knockwatch/knockwatch.yaml"]

# A demo SSH service on 2222 for compose.yaml (seed 001's setup).
FROM debian:bookworm-slim AS demo-sshd
RUN apt-get update \
 && apt-get install -y --no-install-recommends openssh-server \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /run/sshd \
 && useradd -m -s /bin/bash knockuser && echo 'knockuser:knockme' | chpasswd
EXPOSE 2222
CMD ["/usr/sbin/sshd", "-D", "-e", "-p", "2222"]

# The knocking client for compose.yaml: knockwatch's own `knock` plus ssh.
FROM runtime AS demo-client
RUN apt-get update \
 && apt-get install -y --no-install-recommends openssh-client \
 && rm -rf /var/lib/apt/lists/*
HEALTHCHECK NONE
ENTRYPOINT []
CMD ["sleep", "infinity"]
