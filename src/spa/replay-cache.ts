// The replay cache: (user, nonce) of every fresh authenticated datagram, kept
// until the datagram can no longer be fresh. Looked up before any AEAD open;
// filled after authentication and freshness, whatever the later outcome (a
// datagram refused for its address or TOTP code is still spent: otherwise
// whoever captured it could try it again from elsewhere, or after the code
// changed).
//
// Bounded: a per-user quota and a global cap. When either is reached the new
// datagram is refused; an entry is never dropped before it expires, because
// that would make its datagram acceptable again. Only someone holding a
// user's key can add entries for that user, so a full quota is a denial of
// service by a key holder against that user only.
//
// Expiry is on the server's clock, at (client time + max_age + slack): a
// datagram is fresh while |server time - client time| <= max_age, i.e. until
// server time passes client time + max_age, which can be up to 2 x max_age
// after it first arrived (a client clock ahead of ours).

export const DEFAULT_REPLAY_PER_USER = 1024;
export const DEFAULT_REPLAY_GLOBAL = 65_536;
/** Added to every expiry: covers the server clock stepping back a little (NTP) between two arrivals. */
export const REPLAY_SLACK_MS = 10_000;

export interface ReplayEntry {
  readonly user: string;
  /** The 12 nonce bytes as 24 lowercase hex digits (inside the cache: 12 latin1 characters, nonceKeyOf()). */
  readonly nonce: string;
  readonly expiresAt: number;
}

export type AddResult = 'added' | 'user-full' | 'full';

export interface ReplayCache {
  /** Whether (user, nonce) was seen and has not expired at `t`. */
  has(user: string, nonce: string, t: number): boolean;
  /** Remembers (user, nonce) until `expiresAt`; refuses when a bound is reached (nothing is evicted). */
  add(user: string, nonce: string, expiresAt: number, t: number): AddResult;
  /** Forgets entries expired at `t`. */
  expire(t: number): void;
  /** Live entries, for a store that keeps them across a restart. */
  entries(): ReplayEntry[];
  readonly size: number;
}

export interface ReplayCacheOptions {
  readonly perUser?: number;
  readonly global?: number;
}

/** Nonces are handled as latin1 strings (12 characters) inside, hex outside. */
function key(user: string, nonce: string): string {
  return `${user}\0${nonce}`;
}

export function createReplayCache(options: ReplayCacheOptions = {}): ReplayCache {
  const perUser = options.perUser ?? DEFAULT_REPLAY_PER_USER;
  const cap = options.global ?? DEFAULT_REPLAY_GLOBAL;
  const expiry = new Map<string, number>();
  const counts = new Map<string, number>();
  // Min-heap on expiry, in two parallel arrays.
  const heapAt: number[] = [];
  const heapKey: string[] = [];

  function push(at: number, k: string): void {
    let i = heapAt.length;
    heapAt.push(at);
    heapKey.push(k);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (heapAt[p] <= at) break;
      heapAt[i] = heapAt[p];
      heapKey[i] = heapKey[p];
      i = p;
    }
    heapAt[i] = at;
    heapKey[i] = k;
  }

  function pop(): void {
    const lastAt = heapAt.pop() as number;
    const lastKey = heapKey.pop() as string;
    const n = heapAt.length;
    if (n === 0) return;
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && heapAt[c + 1] < heapAt[c]) c++;
      if (heapAt[c] >= lastAt) break;
      heapAt[i] = heapAt[c];
      heapKey[i] = heapKey[c];
      i = c;
    }
    heapAt[i] = lastAt;
    heapKey[i] = lastKey;
  }

  function expire(t: number): void {
    while (heapAt.length > 0 && heapAt[0] <= t) {
      const k = heapKey[0];
      const at = heapAt[0];
      pop();
      // A heap entry left behind by an extended expiry is not the live one.
      if (expiry.get(k) !== at) continue;
      expiry.delete(k);
      const user = k.slice(0, k.indexOf('\0'));
      const c = (counts.get(user) ?? 1) - 1;
      if (c === 0) counts.delete(user);
      else counts.set(user, c);
    }
  }

  return {
    has(user, nonce, t) {
      const at = expiry.get(key(user, nonce));
      return at !== undefined && at > t;
    },
    add(user, nonce, expiresAt, t) {
      expire(t);
      const k = key(user, nonce);
      const old = expiry.get(k);
      if (old !== undefined) {
        // Already there (the caller checks has() first): keep the later expiry.
        if (expiresAt > old) {
          expiry.set(k, expiresAt);
          push(expiresAt, k);
        }
        return 'added';
      }
      const c = counts.get(user) ?? 0;
      if (c >= perUser) return 'user-full';
      if (expiry.size >= cap) return 'full';
      expiry.set(k, expiresAt);
      counts.set(user, c + 1);
      push(expiresAt, k);
      return 'added';
    },
    expire,
    entries() {
      const out: ReplayEntry[] = [];
      for (const [k, at] of expiry) {
        const cut = k.indexOf('\0');
        out.push({ user: k.slice(0, cut), nonce: Buffer.from(k.slice(cut + 1), 'latin1').toString('hex'), expiresAt: at });
      }
      return out;
    },
    get size() {
      return expiry.size;
    },
  };
}
