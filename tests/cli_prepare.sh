#!/bin/bash
# lws prepare: tokenization of files and directories into train.tok /
# val.tok / manifest.json; deterministic; the same files for any --jobs and
# --chunk-bytes, and the same tokens as encoding each file whole (also on
# the King James Bible when the `bible` program is installed); a progress
# bar on stderr only; clear refusals.
set -u
LWS=${1:?usage: cli_prepare.sh path/to/lws}
T=${LWS_TEST_DIR:-$(mktemp -d)}
rm -rf "$T" && mkdir -p "$T"
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# Inputs: a directory (walked in sorted order, hidden files skipped) and a file.
mkdir -p "$T/in/sub" "$T/in/.git"
printf 'In the beginning God created the heaven and the earth.\n' >"$T/in/b.txt"
printf 'And the earth was without form, and void.\n' >"$T/in/a.txt"
printf '\xce\xb2 bytes \x00 and \xff too\n' >"$T/in/sub/c.txt"
printf 'hidden\n' >"$T/in/.hidden"
printf 'not text\n' >"$T/in/.git/config"
/usr/bin/python3 -c "import random, sys; random.seed(3); sys.stdout.buffer.write(bytes(random.randrange(256) for _ in range(3000)))" >"$T/extra.bin"
: >"$T/in/empty.txt"

out=$("$LWS" prepare --tokenizer bytes "$T/in" "$T/extra.bin" -o "$T/out" --val-fraction 0.1 2>"$T/err")
rc=$?
[ $rc -eq 0 ] || fail "prepare exited $rc: $(cat "$T/err")"
[ -s "$T/err" ] && fail "stderr is not a terminal, yet prepare wrote to it: $(cat "$T/err")"
echo "$out"
[ "$(echo "$out" | wc -l)" -eq 1 ] || fail "summary is not one line: $out"
echo "$out" | grep -q "5 files" || fail "summary does not count 5 files: $out"

# Every byte, in walk order, is one token; the last 10% (rounded) are val.
/usr/bin/python3 - "$T" <<'EOF' || failures=$((failures + 1))
import json, struct, sys
T = sys.argv[1]
order = [f"{T}/in/a.txt", f"{T}/in/b.txt", f"{T}/in/empty.txt", f"{T}/in/sub/c.txt", f"{T}/extra.bin"]
data = b"".join(open(p, "rb").read() for p in order)
def read_tok(path):
    b = open(path, "rb").read()
    magic, version, dtype, vocab, hb, count = struct.unpack_from("<8sIIIIQ", b, 0)
    name = b[32:96].split(b"\0")[0].decode()
    h = b[96:160].split(b"\0")[0].decode()
    assert magic == b"LWSTOKNS" and version == 1 and dtype == 2 and vocab == 256 and hb == 256, (magic, version, dtype, vocab, hb)
    assert name == "bytes" and len(h) == 16, (name, h)
    assert len(b) == 256 + 2 * count, (len(b), count)
    assert b[160:256] == bytes(96), "header padding is not zero"
    return list(struct.unpack_from(f"<{count}H", b, 256)), h
train, h1 = read_tok(f"{T}/out/train.tok")
val, h2 = read_tok(f"{T}/out/val.tok")
n_val = int(len(data) * 0.1 + 0.5)
assert len(val) == n_val and len(train) == len(data) - n_val, (len(train), len(val), len(data))
assert bytes(train + val) == data, "tokens are not the input bytes in walk order"
m = json.load(open(f"{T}/out/manifest.json"))
assert m["tokenizer"] == {"name": "bytes", "hash": h1, "vocab_size": 256}, m["tokenizer"]
assert h1 == h2
assert [i["path"] for i in m["inputs"]] == order, [i["path"] for i in m["inputs"]]
for i in m["inputs"]:
    size = len(open(i["path"], "rb").read())
    assert i["bytes"] == size and i["tokens"] == size, i
outs = {o["path"]: o for o in m["outputs"]}
assert outs["train.tok"]["tokens"] == len(train) and outs["val.tok"]["tokens"] == len(val), outs
assert outs["train.tok"]["bytes"] == 256 + 2 * len(train), outs
assert abs(m["val_fraction"] - 0.1) < 1e-12
print("python check: ok,", len(train), "train,", len(val), "val tokens")
EOF

# No temporary files left; a second run gives identical files.
ls "$T/out" | grep -q tmp && fail "temporary files left in $T/out: $(ls "$T/out")"
"$LWS" prepare --tokenizer bytes "$T/in" "$T/extra.bin" -o "$T/out2" --val-fraction 0.1 >/dev/null ||
    fail "second prepare failed"
for f in train.tok val.tok manifest.json; do
    cmp -s "$T/out/$f" "$T/out2/$f" || fail "$f differs between two runs"
done

# ---- threads and chunks never change a token ---------------------------------
same_files() { # dir1 dir2 what
    for f in train.tok val.tok manifest.json; do
        cmp -s "$1/$f" "$2/$f" || fail "$3: $f differs from $1/$f"
    done
}
for args in "--jobs 1" "--jobs 2" "-j 3 --chunk-bytes 1" "--jobs 2 --chunk-bytes 7"; do
    d="$T/bytes_$(echo "$args" | tr -d ' -')"
    "$LWS" prepare --tokenizer bytes "$T/in" "$T/extra.bin" -o "$d" --val-fraction 0.1 $args >/dev/null 2>"$T/err" ||
        fail "prepare bytes $args: $(cat "$T/err")"
    same_files "$T/out" "$d" "bytes, $args"
done

# Text built to break a careless cut: runs of spaces and other whitespace
# (ASCII and Unicode) before words and line ends, contractions split by
# whitespace, apostrophes at the ends, non-ASCII letters and numbers, long
# runs without whitespace, invalid UTF-8 and stray bytes.
/usr/bin/python3 - "$T/adversarial.txt" <<'EOF'
import random, sys
random.seed(11)
atoms = [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n", "\n ", "  \n", "\t\n ", "\x0b", "\x0c",
         "\u00a0", "\u3000", "\u2028", "\u0085", "\ufeff", "\u00a0 ", " \u00a0",
         "'", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "' s", "'r e", "'l\nl", "''", " '",
         "a", "the", "The", "don", "I", "x", "Hello", "world", "\u00e9", "Stra\u00dfe", "na\u00efve",
         "0", "12", "2024", "3.14", "\u0663", "\u00bd", "\u216b", ",", ".", "!", "?", "...", "--",
         "\u2014", "(", ")", "\"", "\\", "#", "$", "%", "&", "~", "<|endoftext|>",
         "\u65e5\u672c\u8a9e", "\u0420\u0443\u0441\u0441\u043a\u0438\u0439", "\U0001f389",
         "\U0001f468\u200d\U0001f469", "\u200d", "\u00ad", "x" * 300, "7" * 150, "!?" * 100]
parts = [random.choice(atoms) for _ in range(40000)]
data = "".join(parts).encode("utf-8")
bad = [b"\xff", b"\xfe", b"\x80", b"\xc0\xaf", b"\xe2\x82", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe3\x80"]
chunks = data.split(b" ")
data = b" ".join(c + (random.choice(bad) if random.random() < 0.1 else b"") for c in chunks)
open(sys.argv[1], "wb").write(data)
EOF
"$LWS" tokenizer train --vocab 600 "$T/adversarial.txt" -o "$T/tok.json" >/dev/null 2>"$T/err" ||
    fail "tokenizer train: $(cat "$T/err")"
# Whole-file encodings as the reference: each input's ids on one line.
reference_ids() { # tokenizer file...
    local tok=$1
    shift
    for f in "$@"; do "$LWS" tokenizer encode --tokenizer "$tok" "$f"; done
}
same_ids() { # dir reference: train.tok then val.tok hold the reference's ids
    /usr/bin/python3 - "$1" "$2" <<'EOF'
import struct, sys
got = []
for name in ("train.tok", "val.tok"):
    b = open(f"{sys.argv[1]}/{name}", "rb").read()
    dtype, count = struct.unpack_from("<I", b, 12)[0], struct.unpack_from("<Q", b, 24)[0]
    got += struct.unpack_from(f"<{count}{ {2: 'H', 4: 'I'}[dtype] }", b, 256)
want = [int(t) for t in open(sys.argv[2]).read().split()]
if got != want:
    first = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
    sys.exit(f"{len(got)} tokens, the reference {len(want)}; first difference at token {first}")
EOF
}
reference_ids "$T/tok.json" "$T/adversarial.txt" "$T/in/a.txt" "$T/in/b.txt" "$T/in/sub/c.txt" "$T/extra.bin" >"$T/bpe_ref.txt"
for args in "--jobs 1" "--jobs 2" "--jobs 2 --chunk-bytes 1" "-j 3 --chunk-bytes 5" "--jobs 2 --chunk-bytes 64"; do
    d="$T/bpe_$(echo "$args" | tr -d ' -')"
    "$LWS" prepare --tokenizer "$T/tok.json" "$T/adversarial.txt" "$T/in" "$T/extra.bin" -o "$d" \
        --val-fraction 0.05 $args >/dev/null 2>"$T/err" || fail "prepare BPE $args: $(cat "$T/err")"
    same_files "$T/bpe_jobs1" "$d" "BPE, $args"
done
same_ids "$T/bpe_jobs2chunkbytes1" "$T/bpe_ref.txt" ||
    fail "BPE tokens in chunks of 1 byte differ from encoding each file whole"
echo "BPE: $(wc -w <"$T/bpe_ref.txt") tokens, the same for --jobs 1, 2, 3 and chunks of 1, 5, 64 bytes and whole files"

if command -v bible >/dev/null; then
    bible Gen1:1-Rev22:21 >"$T/bible.txt"
    reference_ids "$T/tok.json" "$T/bible.txt" >"$T/bible_ref.txt"
    for j in 1 2; do
        "$LWS" prepare --tokenizer "$T/tok.json" "$T/bible.txt" -o "$T/bible_$j" --jobs $j --chunk-bytes 65536 \
            >/dev/null 2>"$T/err" || fail "prepare the bible, --jobs $j: $(cat "$T/err")"
    done
    same_files "$T/bible_1" "$T/bible_2" "the bible, --jobs 2"
    same_ids "$T/bible_2" "$T/bible_ref.txt" ||
        fail "the bible's tokens in chunks differ from encoding it whole"
    echo "bible: $(wc -w <"$T/bible_ref.txt") tokens, the same in chunks of 64 KiB on 1 and 2 threads as whole"
else
    echo "SKIP: the bible comparison (the program bible, Debian package bible-kjv, is not installed)"
fi

# ---- the progress bar: stderr only, files unchanged ----------------------------
out=$("$LWS" prepare --tokenizer "$T/tok.json" "$T/adversarial.txt" "$T/in" "$T/extra.bin" -o "$T/bpe_progress" \
    --val-fraction 0.05 --jobs 2 --chunk-bytes 4096 --progress 2>"$T/err")
[ $? -eq 0 ] || fail "prepare --progress: $(cat "$T/err")"
[ "$(echo "$out" | wc -l)" -eq 1 ] && echo "$out" | grep -q "^lws prepare: " ||
    fail "--progress: stdout is not the one summary line: $out"
last=$(tr '\r' '\n' <"$T/err" | sed '/^$/d' | tail -1)
echo "progress: $last"
echo "$last" | grep -Eq '^tokenizing \[#{30}\] 100%  [0-9.]+/[0-9.]+ MB  [0-9.]+ MB/s  in [0-9.]+ s *$' ||
    fail "--progress: the last bar is not a full one: '$last'"
[ "$(tail -c 1 "$T/err" | od -An -c | tr -d ' ')" = '\n' ] || fail "--progress: the bar does not end its line"
[ "$(tr -cd '\r' <"$T/err" | wc -c)" -ge 2 ] || fail "--progress: the bar was drawn fewer than 2 times"
same_files "$T/bpe_jobs1" "$T/bpe_progress" "--progress"
"$LWS" prepare --tokenizer bytes "$T/extra.bin" -o "$T/quiet" --no-progress 2>"$T/err" >/dev/null
[ -s "$T/err" ] && fail "--no-progress still wrote to stderr: $(cat "$T/err")"

# Default val fraction 0.01, and 0 (an empty val.tok is still written).
"$LWS" prepare --tokenizer bytes "$T/extra.bin" -o "$T/out3" >/dev/null || fail "default fraction"
[ "$(stat -c %s "$T/out3/val.tok")" -eq $((256 + 2 * 30)) ] || fail "val.tok for 1% of 3000 bytes"
"$LWS" prepare --tokenizer bytes "$T/extra.bin" -o "$T/out4" --val-fraction 0 >/dev/null ||
    fail "fraction 0"
[ "$(stat -c %s "$T/out4/val.tok")" -eq 256 ] || fail "val.tok for fraction 0 is not empty"

# Refusals: exit status and a message that names the problem.
expect_fail() { # expected-status fragment command...
    local want=$1 frag=$2
    shift 2
    "$@" >"$T/out.txt" 2>"$T/err.txt"
    local got=$?
    [ $got -eq "$want" ] || fail "$* exited $got, want $want"
    grep -qF -- "$frag" "$T/err.txt" || fail "$*: stderr lacks '$frag': $(cat "$T/err.txt")"
    echo "refused ($got): $(head -1 "$T/err.txt")"
}
expect_fail 1 "tokenizer 'gpt9' is not known; known tokenizers: bytes" \
    "$LWS" prepare --tokenizer gpt9 "$T/in" -o "$T/bad"
[ -e "$T/bad" ] && fail "a refused tokenizer still created $T/bad"
expect_fail 2 "missing --tokenizer" "$LWS" prepare "$T/in" -o "$T/bad"
expect_fail 2 "missing -o DIR" "$LWS" prepare --tokenizer bytes "$T/in"
expect_fail 2 "--val-fraction '1.5'" "$LWS" prepare --tokenizer bytes "$T/in" -o "$T/bad" --val-fraction 1.5
for j in 0 -1 1025 two 1.5 "" 2x; do
    expect_fail 2 "--jobs '$j' is not allowed; use a whole number from 1 to 1024 (threads;" \
        "$LWS" prepare --tokenizer bytes "$T/in" -o "$T/bad" --jobs "$j"
done
expect_fail 2 "-j '0' is not allowed" "$LWS" prepare --tokenizer bytes "$T/in" -o "$T/bad" -j 0
expect_fail 2 "--jobs needs a value" "$LWS" prepare --tokenizer bytes "$T/in" -o "$T/bad" --jobs
expect_fail 2 "--chunk-bytes '0' is not allowed; use a whole number from 1" \
    "$LWS" prepare --tokenizer bytes "$T/in" -o "$T/bad" --chunk-bytes 0
expect_fail 2 "unknown option '--vocab'" "$LWS" prepare --tokenizer bytes --vocab 3 "$T/in" -o "$T/bad"
expect_fail 1 "$T/missing.txt" "$LWS" prepare --tokenizer bytes "$T/missing.txt" -o "$T/bad"
expect_fail 1 "$T/extra.bin is a regular file, not a directory" \
    "$LWS" prepare --tokenizer bytes "$T/in" -o "$T/extra.bin/out"
rm -f "$T/fifo" && mkfifo "$T/fifo"
expect_fail 1 "input $T/fifo: is a FIFO (named pipe), not a regular file or a directory" \
    "$LWS" prepare --tokenizer bytes "$T/fifo" -o "$T/bad"
mkdir -p "$T/only_hidden/.x"
expect_fail 1 "no input files" "$LWS" prepare --tokenizer bytes "$T/only_hidden" -o "$T/bad"
[ -e "$T/bad" ] && fail "a refused command still created $T/bad"
"$LWS" prepare --help | grep -q -- "--jobs" || fail "--help does not list options"

if [ $failures -ne 0 ]; then
    echo "cli_prepare: $failures failure(s)"
    exit 1
fi
echo "cli_prepare: ok"
