// The zod schema of a config file as written (snake_case, durations and ports
// as text). Values are checked one at a time by the rules in values.ts; a
// door's keys depend on its kind (door-kinds.ts); rules that relate several
// values live in checks.ts.
import { z } from 'zod';
import { CAPTURE_KINDS, FIREWALL_KINDS, oneOf } from '../types.js';
import { DEFAULT_MAX_SOURCES } from '../limits.js';
import { doorSchema } from './door-kinds.js';
import { describeValue } from './errors.js';
import { usersSchema } from './users.js';
import { interfaceName, mapping, maxSources } from './values.js';

export const configShape = {
  interface: interfaceName.optional().default('any'),
  firewall: z
    .enum(FIREWALL_KINDS, { error: (iss) => `expected ${oneOf(FIREWALL_KINDS)}, got ${describeValue(iss.input)}` })
    .default('nftables'),
  capture: z.enum(CAPTURE_KINDS, { error: (iss) => `expected ${oneOf(CAPTURE_KINDS)}, got ${describeValue(iss.input)}` }).default('pcap'),
  max_sources: maxSources.optional().default(DEFAULT_MAX_SOURCES),
  doors: z
    .array(doorSchema, { error: (iss) => (iss.input === undefined ? 'required key is missing: a config file must define its doors' : `expected a list of doors, got ${describeValue(iss.input)}`) })
    .min(1, { error: 'must define at least one door' }),
  users: usersSchema.optional(),
};

export const configSchema = mapping(configShape, 'a mapping of settings');

export type RawConfig = z.output<typeof configSchema>;

export const CONFIG_KEYS: readonly string[] = Object.keys(configShape);
