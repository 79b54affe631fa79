// A token bucket on packet time: `burst` tokens, refilled at `perSecond`.
// Plain data plus two functions, so a bucket can live inside a Map entry
// without a closure, and time only ever comes from the caller (a time below
// the last one seen refills nothing).

export interface Bucket {
  tokens: number;
  /** Time (ms) of the last refill. */
  last: number;
}

export interface BucketRule {
  readonly burst: number;
  readonly perSecond: number;
}

export function newBucket(rule: BucketRule, t: number): Bucket {
  return { tokens: rule.burst, last: t };
}

function refill(b: Bucket, rule: BucketRule, t: number): void {
  if (t > b.last) {
    b.tokens = Math.min(rule.burst, b.tokens + ((t - b.last) / 1000) * rule.perSecond);
    b.last = t;
  }
}

/** Whether a token is there now (takes none). */
export function hasToken(b: Bucket, rule: BucketRule, t: number): boolean {
  refill(b, rule, t);
  return b.tokens >= 1;
}

/** Takes one token if there is one. */
export function takeToken(b: Bucket, rule: BucketRule, t: number): boolean {
  refill(b, rule, t);
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}
