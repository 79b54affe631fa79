// The effective config written back in the input file's shape: snake_case
// keys, durations in their most readable unit, ports as PORT/proto. The
// output parses back to the same config (JSON output too: JSON is YAML).
import { Document, visit } from 'yaml';
import { formatPort, type Door, type KnockwatchConfig } from '../types.js';
import { doorKindSpec } from './door-kinds.js';
import { formatDuration } from './duration.js';

/** A door in the file's shape: the common keys, then its kind's own (door-kinds.ts). */
export interface DoorJSON {
  name: string;
  open: string[];
  duration: string;
  start_command?: string[];
  stop_command?: string[];
  [kindKey: string]: unknown;
}

export interface ConfigJSON {
  interface: string;
  firewall: string;
  capture: string;
  max_sources: number;
  doors: DoorJSON[];
  /** spa users: names and key file paths (never the keys). */
  users?: Array<{ name: string; key_file: string | string[]; totp_file?: string }>;
}

function doorToJSON(d: Door): DoorJSON {
  // Key order as people write doors: name, the kind's keys, then what it opens.
  return {
    name: d.name,
    ...doorKindSpec(d).toJSON(d),
    open: d.open.map(formatPort),
    duration: formatDuration(d.durationMs),
    ...(d.startCommand !== undefined ? { start_command: [...d.startCommand] } : {}),
    ...(d.stopCommand !== undefined ? { stop_command: [...d.stopCommand] } : {}),
  };
}

/** Plain data in the config file's shape. */
export function configToJSON(cfg: KnockwatchConfig): ConfigJSON {
  return {
    interface: cfg.interface,
    firewall: cfg.firewall,
    capture: cfg.capture,
    max_sources: cfg.maxSources,
    doors: cfg.doors.map(doorToJSON),
    ...(cfg.users !== undefined
      ? { users: cfg.users.map((u) => ({ name: u.name, key_file: u.keyFiles.length === 1 ? u.keyFiles[0] : [...u.keyFiles], ...(u.totpFile !== undefined ? { totp_file: u.totpFile } : {}) })) }
      : {}),
  };
}

/** YAML text; port lists and commands in flow style, `[1234/tcp, 5678/tcp]`. */
export function formatConfig(cfg: KnockwatchConfig): string {
  const doc = new Document(configToJSON(cfg));
  const doors = doc.get('doors', true);
  const users = doc.get('users', true);
  visit(doc, {
    Seq(_key, node) {
      // Everything but the doors list itself reads best on one line.
      if (node !== doors && node !== users) node.flow = true;
    },
    Scalar(_key, node) {
      // A block scalar cannot stand inside a flow sequence: strings with line
      // breaks or other control characters are written double-quoted (escaped).
      if (typeof node.value === 'string' && /[\u0000-\u001f\u007f]/.test(node.value)) node.type = 'QUOTE_DOUBLE';
    },
  });
  return doc.toString({ lineWidth: 0, flowCollectionPadding: false });
}
