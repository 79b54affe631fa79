#!/usr/bin/env node
// Runs compose.yaml with plain podman commands, for machines without Docker
// where Debian 12's podman-compose (1.0.3) is too old: it ignores
// `ipv4_address` and passes `network_mode: service:X` through as is.
//   node scripts/compose-podman.mjs up   -p PROJECT [-f compose.yaml]
//   node scripts/compose-podman.mjs down -p PROJECT [-f compose.yaml]
// Only the compose keys compose.yaml uses are understood; any other key is an
// error naming it, so the file cannot drift into something this runner would
// silently skip. `${VAR:-default}` is substituted from the environment.
// Containers are named PROJECT-SERVICE, networks PROJECT-NETWORK; `up` starts
// services after their depends_on; `down` removes what `up` made (missing
// objects are fine, so it also cleans up after a failed `up`).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse } from 'yaml';

const SERVICE_KEYS = new Set(['image', 'build', 'networks', 'network_mode', 'cap_add', 'command', 'volumes', 'depends_on', 'restart']);
const TOP_KEYS = new Set(['name', 'services', 'networks']);

function usage(message) {
  process.stderr.write(`compose-podman: ${message}\nusage: compose-podman.mjs up|down -p PROJECT [-f FILE]\n`);
  process.exit(2);
}

function substitute(text, where) {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (_, name, fallback) => {
    const value = process.env[name];
    if (value !== undefined && value !== '') return value;
    if (fallback === undefined) throw new Error(`${where}: \${${name}} is not set`);
    return fallback;
  });
}

function load(file) {
  const doc = parse(readFileSync(file, 'utf8'));
  for (const key of Object.keys(doc)) if (!TOP_KEYS.has(key)) throw new Error(`${file}: top-level key '${key}' is not supported by this runner`);
  const services = doc.services ?? {};
  for (const [name, svc] of Object.entries(services)) {
    for (const key of Object.keys(svc)) if (!SERVICE_KEYS.has(key)) throw new Error(`${file}: services.${name}.${key} is not supported by this runner`);
    if (!svc.image) throw new Error(`${file}: services.${name} needs an image: (this runner does not build)`);
  }
  return { services, networks: doc.networks ?? {} };
}

/** Services in an order where each comes after its depends_on. */
function startOrder(services) {
  const order = [];
  const visiting = new Set();
  const visit = (name) => {
    if (order.includes(name)) return;
    if (visiting.has(name)) throw new Error(`depends_on cycle at ${name}`);
    if (!services[name]) throw new Error(`depends_on names an unknown service '${name}'`);
    visiting.add(name);
    for (const dep of services[name].depends_on ?? []) visit(dep);
    order.push(name);
  };
  for (const name of Object.keys(services)) visit(name);
  return order;
}

function podman(args, { allowFail = false } = {}) {
  process.stderr.write(`+ podman ${args.join(' ')}\n`);
  try {
    return execFileSync('podman', args, { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
  } catch (err) {
    if (allowFail) return '';
    throw new Error(`podman ${args[0]} failed (exit ${err.status})`);
  }
}

function runArgs(project, name, svc, baseDir) {
  const args = ['run', '-d', '--name', `${project}-${name}`, '--label', `io.knockwatch.compose.project=${project}`];
  if (svc.network_mode !== undefined) {
    const m = /^service:(.+)$/.exec(svc.network_mode);
    if (!m) throw new Error(`services.${name}.network_mode: only 'service:NAME' is supported`);
    args.push('--network', `container:${project}-${m[1]}`);
  }
  for (const [net, opts] of Object.entries(svc.networks ?? {})) {
    args.push('--network', `${project}-${net}`);
    if (opts?.ipv4_address) args.push('--ip', opts.ipv4_address);
    args.push('--network-alias', name);
  }
  for (const cap of svc.cap_add ?? []) args.push('--cap-add', cap);
  if (svc.restart !== undefined) args.push('--restart', svc.restart);
  for (const vol of svc.volumes ?? []) {
    const [src, dst, mode] = substitute(vol, `services.${name}.volumes`).split(':');
    const host = src.startsWith('.') || src.startsWith('/') ? resolve(baseDir, src) : src;
    args.push('-v', [host, dst, ...(mode ? [mode] : [])].join(':'));
  }
  args.push(substitute(svc.image, `services.${name}.image`));
  if (svc.command !== undefined) {
    if (!Array.isArray(svc.command)) throw new Error(`services.${name}.command: use the list form (no shell)`);
    args.push(...svc.command.map(String));
  }
  return args;
}

function up(project, file) {
  const { services, networks } = load(file);
  const baseDir = dirname(resolve(file));
  for (const [net, opts] of Object.entries(networks)) {
    const args = ['network', 'create'];
    for (const pool of opts?.ipam?.config ?? []) if (pool.subnet) args.push('--subnet', pool.subnet);
    podman([...args, `${project}-${net}`]);
  }
  for (const name of startOrder(services)) podman(runArgs(project, name, services[name], baseDir));
}

function down(project, file) {
  const { services, networks } = load(file);
  for (const name of startOrder(services).reverse()) podman(['rm', '-f', '-t', '5', `${project}-${name}`], { allowFail: true });
  for (const net of Object.keys(networks)) podman(['network', 'rm', '-f', `${project}-${net}`], { allowFail: true });
}

const [verb, ...rest] = process.argv.slice(2);
let project;
let file = 'compose.yaml';
for (let i = 0; i < rest.length; i++) {
  if (rest[i] === '-p') project = rest[++i];
  else if (rest[i] === '-f') file = rest[++i];
  else usage(`unknown argument '${rest[i]}'`);
}
if (!project || !/^[a-z0-9][a-z0-9_-]*$/.test(project)) usage('-p PROJECT (lowercase letters, digits, - and _) is required');
try {
  if (verb === 'up') up(project, file);
  else if (verb === 'down') down(project, file);
  else usage(`unknown command '${verb ?? ''}'`);
} catch (err) {
  process.stderr.write(`compose-podman: ${err.message}\n`);
  process.exit(1);
}
