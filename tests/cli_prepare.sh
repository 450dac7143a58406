#!/bin/bash
# lws prepare: byte-level tokenization of files and directories into
# train.tok / val.tok / manifest.json; deterministic; clear refusals.
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
expect_fail 2 "unknown option '--vocab'" "$LWS" prepare --tokenizer bytes --vocab 3 "$T/in" -o "$T/bad"
expect_fail 1 "$T/missing.txt" "$LWS" prepare --tokenizer bytes "$T/missing.txt" -o "$T/bad"
mkdir -p "$T/only_hidden/.x"
expect_fail 1 "no input files" "$LWS" prepare --tokenizer bytes "$T/only_hidden" -o "$T/bad"
"$LWS" prepare --help | grep -q -- "--val-fraction" || fail "--help does not list options"

if [ $failures -ne 0 ]; then
    echo "cli_prepare: $failures failure(s)"
    exit 1
fi
echo "cli_prepare: ok"
