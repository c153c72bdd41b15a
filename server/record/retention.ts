// Which recorded segments go: those that ended longer ago than the retention period, then the
// oldest until the rest fit the byte limit. The segment being written is never deleted.

export interface RetainPolicy {
  /** Segments that ended longer ago than this go; null: kept however old. */
  readonly hours: number | null;
  /** The segments of a stream together stay within this; null: no limit. */
  readonly maxBytes: number | null;
}

export interface RetainedSegment {
  readonly end: number;
  readonly bytes: number;
  readonly status: string;
}

/** The segments to delete (oldest first), of `segments` sorted oldest first, at wall clock `now`. */
export function expiredSegments<S extends RetainedSegment>(segments: readonly S[], policy: RetainPolicy, now: number): S[] {
  const doomed: S[] = [];
  let bytes = 0;
  for (const s of segments) bytes += s.bytes;
  for (const s of segments) {
    if (s.status === "open") continue;
    const tooOld = policy.hours !== null && now - s.end > policy.hours * 3_600_000;
    const tooMuch = policy.maxBytes !== null && bytes > policy.maxBytes;
    if (!tooOld && !tooMuch) continue;
    doomed.push(s);
    bytes -= s.bytes;
  }
  return doomed;
}
