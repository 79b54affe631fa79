# syntax=docker/dockerfile:1
# knockwatch image. Build tools (for the `cap` addon and the eBPF program) live
# only in the build stage; the runtime stage has libpcap, nftables, iptables.

FROM node:20-bookworm-slim AS build
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
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libpcap0.8 nftables iptables ipset iproute2 libbpf1 libelf1 zlib1g \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/build ./build
COPY examples/knockwatch.yaml /etc/knockwatch/knockwatch.yaml
ENTRYPOINT ["node", "/app/dist/cli.js"]
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
 && apt-get install -y --no-install-recommends openssh-client netcat-openbsd \
 && rm -rf /var/lib/apt/lists/*
ENTRYPOINT []
CMD ["sleep", "infinity"]
