// The secret format, <prefix>_<random>_<checksum>, checked as tokend's
// secret.Check does: a mistyped or made-up secret is refused without a call.

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const RANDOM_LEN = 43;
const CHECKSUM_LEN = 6;
const MAX_PREFIX_LEN = 16;
const MIN_LEN = 1 + 1 + RANDOM_LEN + 1 + CHECKSUM_LEN;
const MAX_LEN = MAX_PREFIX_LEN + 1 + RANDOM_LEN + 1 + CHECKSUM_LEN;

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(s: string, end: number): number {
  let c = 0xffffffff;
  for (let i = 0; i < end; i++) c = CRC_TABLE[(c ^ s.charCodeAt(i)) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Reports whether s is a well-formed tokend secret with a correct checksum. */
export function validSecret(s: string): boolean {
  if (s.length > MAX_LEN || s.length < MIN_LEN) return false;
  const sumAt = s.length - CHECKSUM_LEN;
  const randAt = sumAt - 1 - RANDOM_LEN;
  if (s[sumAt - 1] !== "_" || s[randAt - 1] !== "_" || randAt - 1 < 1) return false;
  for (let i = 0; i < randAt - 1; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 95)) return false;
  }
  for (let i = randAt; i < sumAt - 1; i++) if (ALPHABET.indexOf(s[i]!) < 0) return false;
  let want = 0;
  for (let i = sumAt; i < s.length; i++) {
    const d = ALPHABET.indexOf(s[i]!);
    if (d < 0) return false;
    want = want * 62 + d;
  }
  return crc32(s, sumAt - 1) === want;
}
