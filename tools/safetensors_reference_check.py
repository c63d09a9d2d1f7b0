"""Runs the reference safetensors reader (huggingface safetensors, the Rust crate through its Python
binding) on crafted files, one per rule of docs/safetensors-rules.md, and prints what it does beside
what pdiff does (tests/io/safetensors_test.cpp checks pdiff's side of each case).

  pip install safetensors numpy      # no torch needed: framework="numpy"
  python tools/safetensors_reference_check.py [DIR]
Prints one line per case: name, the reference's verdict (ACCEPT / REJECT: its message), pdiff's verdict,
and "agree" or "pdiff stricter". Exits 1 when the reference disagrees with the expectation written here
(a new safetensors release changed a rule: update the reader and the doc).
"""
import os
import struct
import sys
import tempfile

import safetensors
from safetensors import safe_open


def blob(header, data=b"", declared=None):
    h = header.encode() if isinstance(header, str) else header
    return struct.pack("<Q", len(h) if declared is None else declared) + h + data


def entry(dtype, shape, b, e):
    return '{"dtype":"%s","shape":%s,"data_offsets":[%d,%d]}' % (dtype, shape, b, e)


def deep(d):
    return blob('{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":' + "[" * d + "]" * d + "}}", b"\0")


A, R = "ACCEPT", "REJECT"
# (name, file bytes, pdiff's verdict)
CASES = [
    ("file shorter than 8 bytes", b"abc", R),
    ("header length above 100,000,000", blob("{}", declared=100_000_001), R),
    ("header length exactly 100,000,000", blob("{}" + " " * (100_000_000 - 2)), A),
    ("header length beyond the file", blob("{}", declared=50), R),
    ("empty header", blob(""), R),
    ("header padded with spaces/tabs/newlines", blob("  {}   \t\r\n"), A),
    ("trailing non-space after the JSON", blob("{}x"), R),
    ("comment after the JSON", blob("{} /* c */"), R),
    ("NUL padding", blob(b"{}\0\0"), R),
    ("UTF-8 byte-order mark", blob(b"\xef\xbb\xbf{}"), R),
    ("invalid UTF-8 in a string", blob(b'{"__metadata__":{"x":"\xff"}}'), R),
    ("UTF-8-encoded surrogate", blob(b'{"__metadata__":{"x":"\xed\xa0\x80"}}'), R),
    ("lone surrogate escape", blob('{"__metadata__":{"x":"\\ud800"}}'), R),
    ("header not an object", blob("[1,2]"), R),
    ("nesting 127 levels (in an unknown field)", deep(125), A),
    ("nesting 128 levels", deep(126), R),
    ("number 1e400 in an unknown field", blob('{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":1e400}}', b"\0"), R),
    ("tensor name twice (last tiles the data)", blob('{"a":%s,"a":%s}' % (entry("F32", "[1]", 0, 4), entry("F32", "[2]", 0, 8)), b"\0" * 8), R),
    ("tensor name twice, once escaped", blob('{"a":%s,"\\u0061":%s}' % (entry("F32", "[1]", 0, 4), entry("F32", "[1]", 4, 8)), b"\0" * 8), R),
    ("field twice in a tensor entry", blob('{"a":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}', b"\0" * 4), R),
    ("unknown field twice in a tensor entry", blob('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":1,"x":2}}', b"\0"), R),
    ("__metadata__ twice", blob('{"__metadata__":{},"__metadata__":{}}'), R),
    ("__metadata__ key twice", blob('{"__metadata__":{"x":"1","x":"2"}}'), R),
    ("empty tensor name", blob('{"":%s}' % entry("F32", "[1]", 0, 4), b"\0" * 4), A),
    ("__metadata__ null", blob('{"__metadata__":null}'), A),
    ("__metadata__ value not a string", blob('{"__metadata__":{"x":1}}'), R),
    ("__metadata__ value null", blob('{"__metadata__":{"x":null}}'), R),
    ("__metadata__ an array", blob('{"__metadata__":[]}'), R),
    ("__metadata__ holding a tensor entry", blob('{"__metadata__":%s}' % entry("F32", "[1]", 0, 4), b"\0" * 4), R),
    ("tensor entry missing data_offsets", blob('{"a":{"dtype":"F32","shape":[1]}}', b"\0" * 4), R),
    ("tensor entry as an array [dtype, shape, offsets]", blob('{"a":["U8",[1],[0,1]]}', b"\0"), R),
    ("tensor entry with an unknown field", blob('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}', b"\0" * 4), A),
    ("data_offsets with 3 entries", blob('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,4]}}', b"\0" * 4), R),
    ("dtype not a string", blob('{"a":{"dtype":1,"shape":[1],"data_offsets":[0,4]}}', b"\0" * 4), R),
    ("unknown dtype F7", blob('{"a":%s}' % entry("F7", "[1]", 0, 4), b"\0" * 4), R),
    ("lower-case dtype f32", blob('{"a":%s}' % entry("f32", "[1]", 0, 4), b"\0" * 4), R),
    ("byte-order dtype >f4", blob('{"a":%s}' % entry(">f4", "[1]", 0, 4), b"\0" * 4), R),
    ("F8_E4M3", blob('{"a":%s}' % entry("F8_E4M3", "[2]", 0, 2), b"\0" * 2), A),
    ("F8_E5M2", blob('{"a":%s}' % entry("F8_E5M2", "[2]", 0, 2), b"\0" * 2), A),
    ("F8_E8M0", blob('{"a":%s}' % entry("F8_E8M0", "[2]", 0, 2), b"\0" * 2), A),
    ("F8_E4M3FNUZ", blob('{"a":%s}' % entry("F8_E4M3FNUZ", "[2]", 0, 2), b"\0" * 2), A),
    ("C64", blob('{"a":%s}' % entry("C64", "[1]", 0, 8), b"\0" * 8), A),
    ("F4, whole bytes", blob('{"a":%s}' % entry("F4", "[2]", 0, 1), b"\0"), A),
    ("F4, 3 elements (12 bits)", blob('{"a":%s}' % entry("F4", "[3]", 0, 2), b"\0" * 2), R),
    ("F6_E3M2, 4 elements (3 bytes)", blob('{"a":%s}' % entry("F6_E3M2", "[4]", 0, 3), b"\0" * 3), A),
    ("shape entry -1", blob('{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}', b"\0" * 4), R),
    ("shape entry -0", blob('{"a":{"dtype":"F32","shape":[-0],"data_offsets":[0,0]}}'), R),
    ("shape entry 1.0", blob('{"a":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}', b"\0" * 4), R),
    ("data offset -0", blob('{"a":{"dtype":"F32","shape":[1],"data_offsets":[-0,4]}}', b"\0" * 4), R),
    ("data offset 4e0", blob('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4e0]}}', b"\0" * 4), R),
    ("data offset 2^64", blob('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,18446744073709551616]}}', b"\0" * 4), R),
    ("data offsets 2^53+1, 2^53+2", blob('{"a":%s}' % entry("U8", "[1]", 2**53 + 1, 2**53 + 2), b"\0"), R),
    ("shape x dtype != end - begin", blob('{"a":%s}' % entry("F32", "[3]", 0, 8), b"\0" * 8), R),
    ("begin after end", blob('{"a":%s}' % entry("F32", "[0]", 8, 4), b"\0" * 8), R),
    ("shape product overflows before a 0", blob('{"a":%s}' % entry("F32", "[4294967296,4294967296,0]", 0, 0)), R),
    ("shape product x bits overflows", blob('{"a":%s}' % entry("U8", "[2305843009213693952]", 0, 0)), R),
    ("zero-size tensor", blob('{"a":%s}' % entry("F32", "[0,3]", 0, 0)), A),
    ("zero-size with huge extents after the 0", blob('{"a":%s}' % entry("F32", "[0,4294967296,4294967296]", 0, 0)), A),
    ("zero-size with an extent of 2^63", blob('{"a":%s}' % entry("F32", "[9223372036854775808,0]", 0, 0)), R),
    ("two zero-size tensors at the same offset", blob('{"a":%s,"b":%s}' % (entry("F32", "[0]", 0, 0), entry("F32", "[0]", 0, 0))), A),
    ("scalar (shape [])", blob('{"a":%s}' % entry("F32", "[]", 0, 4), b"\0" * 4), A),
    ("rank 9", blob('{"a":%s}' % entry("F32", "[1,1,1,1,1,1,1,1,1]", 0, 4), b"\0" * 4), A),
    ("tensor beyond the data", blob('{"a":%s}' % entry("F32", "[2]", 0, 8), b"\0" * 4), R),
    ("overlapping tensors", blob('{"a":%s,"b":%s}' % (entry("F32", "[2]", 0, 8), entry("F32", "[2]", 4, 12)), b"\0" * 12), R),
    ("gap before the first tensor", blob('{"a":%s}' % entry("F32", "[1]", 4, 8), b"\0" * 8), R),
    ("data after the last tensor", blob('{"a":%s}' % entry("F32", "[1]", 0, 4), b"\0" * 8), R),
    ("entries out of offset order", blob('{"a":%s,"b":%s}' % (entry("F32", "[1]", 4, 8), entry("F32", "[1]", 0, 4)), b"\0" * 8), A),
]


def reference(path):
    try:
        with safe_open(path, framework="numpy") as f:
            list(f.keys())
            f.metadata()
        return A, ""
    except Exception as e:  # noqa: BLE001 -- any refusal counts
        return R, str(e).replace("Error while deserializing header: ", "")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="st_ref_")
    os.makedirs(out, exist_ok=True)
    print(f"safetensors {safetensors.__version__}")
    surprises = 0
    for i, (name, data, pdiff) in enumerate(CASES):
        path = os.path.join(out, f"case{i:02d}.safetensors")
        with open(path, "wb") as f:
            f.write(data)
        ref, why = reference(path)
        note = "agree" if ref == pdiff else "pdiff stricter" if pdiff == R else "PDIFF LOOSER"
        surprises += note == "PDIFF LOOSER"
        os.remove(path)
        print(f"{name:48s} | reference {ref}{': ' + why[:90] if why else ''} | pdiff {pdiff} | {note}")
    sys.exit(1 if surprises else 0)


if __name__ == "__main__":
    main()
