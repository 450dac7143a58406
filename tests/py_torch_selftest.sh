#!/bin/bash
# The PyTorch reference's selftest: the parity checker passes good runs and
# fails corrupted ones. Needs Debian's python3-torch for /usr/bin/python3.
set -u
cd "$(dirname "$0")/.." || exit 1
if ! /usr/bin/python3 -c "import torch" >/dev/null 2>&1; then
    echo "SKIP: python3-torch not installed (/usr/bin/python3 cannot import torch; apt install python3-torch)"
    exit 0
fi
exec /usr/bin/python3 tests/torch_reference.py selftest
