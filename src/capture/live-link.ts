// cap's open() returns the link type as a name, not a number, and only knows
// five names; any other type comes back as "Unknown linktype N" with N the
// DLT_* value. Frames carry LINKTYPE_* numbers (what capture files use), so
// map both forms. DLT and LINKTYPE agree except for a few old values.

const BY_NAME: Readonly<Record<string, number>> = {
  NULL: 0,
  ETHERNET: 1,
  IEEE802_11_RADIO: 127,
  LINKTYPE_LINUX_SLL: 113,
  // cap says RAW for DLT_RAW, which is 12 on Linux; the file format's number is 101.
  RAW: 101,
};

/** DLT_* values whose LINKTYPE_* number differs (Linux values). */
const DLT_TO_LINKTYPE: Readonly<Record<number, number>> = {
  11: 100, // DLT_ATM_RFC1483
  12: 101, // DLT_RAW (Linux)
  14: 101, // DLT_RAW (some BSDs)
  15: 102, // DLT_SLIP_BSDOS
  16: 103, // DLT_PPP_BSDOS
};

/** LINKTYPE_* number for what cap's open() returned; throws on anything unrecognisable. */
export function linkTypeFromCap(value: unknown): number {
  if (typeof value === 'string') {
    if (Object.hasOwn(BY_NAME, value)) return BY_NAME[value];
    const m = /^Unknown linktype (\d+)$/.exec(value);
    if (m) {
      const dlt = Number(m[1]);
      return Object.hasOwn(DLT_TO_LINKTYPE, dlt) ? DLT_TO_LINKTYPE[dlt] : dlt;
    }
  }
  throw new TypeError(`cap open() returned an unrecognised link type: ${JSON.stringify(value)}`);
}
