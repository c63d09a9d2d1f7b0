#!/usr/bin/env python3
"""Writes include/pdiff/io/unicode_normalization_tables.hpp: the data of NFC/NFD/NFKC/NFKD as the
tokenizers library has it.

Run: PY=$(tools/refenv.sh); $PY tools/make_unicode_normalization.py

Which Unicode: tokenizers (0.22.2, as every release since 0.8) normalizes with the crate
unicode-normalization-alignments 0.1.12, a fork of unicode-normalization whose tables are Unicode 9.0.0
(its UNICODE_VERSION). The reference Python's unicodedata is Unicode 14.0.0. Unicode's normalization
stability policy makes the two agree on every character Unicode 9.0 had (decompositions, combining
classes and composition exclusions of an assigned character never change), so the tables are
unicodedata's data restricted to characters whose Age is <= 9.0; a later character has combining class 0
and no decomposition, as in the crate. The Age property comes from Perl's Unicode::UCD (core Perl, here
Unicode 14.0.0 too), since unicodedata has none.
When the tokenizers package is importable the tables are checked against it: the NFD and NFKD of every
code point, every composition pair through NFC, and the canonical ordering of every combining mark.

Tables (all sorted by code point, looked up by binary search):
  ccc_ranges            {first, last, ccc}: runs of equal non-zero canonical combining class
  decompositions        {cp, at, len, compat}: the one-level mapping of cp is
                        decomposition_chars[at, at + len); compat: a compatibility (<tag>) mapping
  compositions          {first, second, composite}: the primary composites (canonical pairs that are not
                        composition exclusions, singletons or non-starter decompositions), sorted by
                        (first, second)
Hangul syllables are algorithmic and not in the tables.
"""
import os
import subprocess
import sys
import unicodedata

OUT = os.path.join(os.path.dirname(__file__), "..", "include", "pdiff", "io", "unicode_normalization_tables.hpp")
UNICODE_VERSION = (9, 0)  # unicode-normalization-alignments 0.1.12


def ages():
    """Age of every code point as (major, minor), None where unassigned, from Perl's Unicode::UCD."""
    out = subprocess.run(["perl", "-MUnicode::UCD=prop_invmap", "-e",
                          'my ($l,$m)=prop_invmap("Age"); print "$l->[$_]\\t$m->[$_]\\n" for 0..$#$l'],
                         check=True, capture_output=True, text=True).stdout.split("\n")
    runs = [line.split("\t") for line in out if line]
    age = [None] * 0x110000
    for i, (start, value) in enumerate(runs):
        end = int(runs[i + 1][0]) if i + 1 < len(runs) else 0x110000
        v = None if value in ("Unassigned", "NA", "") else tuple(int(x) for x in value.split("."))
        for cp in range(int(start), end):
            age[cp] = v
    return age


def build():
    age = ages()
    known = [a is not None and a <= UNICODE_VERSION for a in age]
    ccc = [unicodedata.combining(chr(cp)) if known[cp] else 0 for cp in range(0x110000)]
    decomp = {}
    for cp in range(0x110000):
        if not known[cp]:
            continue
        d = unicodedata.decomposition(chr(cp))
        if not d:
            continue
        parts = d.split()
        compat = parts[0].startswith("<")
        chars = [int(x, 16) for x in (parts[1:] if compat else parts)]
        assert all(known[c] for c in chars), hex(cp)
        decomp[cp] = (chars, compat)
    comps = []
    for cp, (chars, compat) in decomp.items():
        if not compat and len(chars) == 2 and unicodedata.normalize("NFC", chr(cp)) == chr(cp):
            comps.append((chars[0], chars[1], cp))
    comps.sort()
    return ccc, decomp, comps


# ---- a model of the C++ lookups, to check the tables against tokenizers -------------------------
def full_decomposition(cp, decomp, compat):
    if 0xAC00 <= cp <= 0xD7A3:
        s = cp - 0xAC00
        out = [0x1100 + s // 588, 0x1161 + (s % 588) // 28]
        return out + ([0x11A7 + s % 28] if s % 28 else [])
    d = decomp.get(cp)
    if d is None or (d[1] and not compat):
        return [cp]
    return [x for c in d[0] for x in full_decomposition(c, decomp, compat)]


def canonical_order(cps, ccc):
    out, i = [], 0
    while i < len(cps):
        j = i
        while j < len(cps) and ccc[cps[j]] != 0:
            j += 1
        out += sorted(cps[i:j], key=lambda c: ccc[c]) + cps[j:j + 1]  # stable: equal classes keep their order
        i = j + 1
    return out


def check(ccc, decomp, comps):
    try:
        from tokenizers import normalizers
    except ImportError:
        print("tokenizers not importable: tables not checked", file=sys.stderr)
        return
    nfd, nfkd, nfc = normalizers.NFD(), normalizers.NFKD(), normalizers.NFC()
    bad = 0
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        for n, compat in ((nfd, False), (nfkd, True)):
            want = [ord(c) for c in n.normalize_str(chr(cp))]
            got = full_decomposition(cp, decomp, compat)
            got = canonical_order(got, ccc)
            if want != got:
                bad += 1
                print("decomposition differs", hex(cp), compat, [hex(c) for c in want], [hex(c) for c in got])
    for a, b, c in comps:
        if nfc.normalize_str(chr(a) + chr(b)) != chr(c):
            bad += 1
            print("composition differs", hex(a), hex(b), hex(c))
    marks = 0
    for cp in range(0x110000):
        k = unicodedata.combining(chr(cp))
        if k == 0 or k == 220:
            continue
        marks += 1
        s = "x" + chr(cp) + "\u0316"  # U+0316 has ccc 220
        want = canonical_order([ord("x")] + full_decomposition(cp, decomp, False) + [0x316], ccc)
        if [ord(c) for c in nfd.normalize_str(s)] != want:
            bad += 1
            print("canonical ordering differs", hex(cp), ccc[cp])
    assert bad == 0, f"{bad} differences from tokenizers"
    print(f"checked against tokenizers: NFD/NFKD of all code points, {len(comps)} compositions, {marks} marks")


def main():
    ccc, decomp, comps = build()
    check(ccc, decomp, comps)
    ranges = []
    for cp in range(0x110000):
        if ccc[cp] == 0:
            continue
        if ranges and ranges[-1][1] == cp - 1 and ranges[-1][2] == ccc[cp]:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp, ccc[cp]])
    chars, entries = [], []
    for cp in sorted(decomp):
        d, compat = decomp[cp]
        entries.append((cp, len(chars), len(d), int(compat)))
        chars += d
    assert len(chars) < 65536 and max(e[2] for e in entries) < 256
    v = ".".join(map(str, UNICODE_VERSION)) + ".0"
    lines = [
        "// pdiff/io/unicode_normalization_tables.hpp — Unicode normalization data (generated by",
        f"// tools/make_unicode_normalization.py; do not edit). Unicode {v}: the version of",
        "// unicode-normalization-alignments 0.1.12, the crate the tokenizers library normalizes with; made",
        f"// from Python's unicodedata (Unicode {unicodedata.unidata_version}) restricted to the characters of Unicode {v}.",
        "// ccc_ranges: runs of equal non-zero canonical combining class. decompositions: the one-level mapping",
        "// of cp is decomposition_chars[at, at + len), compat if it is a <tag> mapping. compositions: the",
        "// primary composites by (first, second). Hangul syllables are algorithmic. All sorted.",
        "#pragma once",
        "",
        "#include <cstdint>",
        "",
        "namespace pdiff::unicode::detail {",
        f'inline constexpr const char* normalization_unicode_version = "{v}";',
        "struct CccRange {",
        "  std::uint32_t first, last;",
        "  std::uint8_t ccc;",
        "};",
        "struct Decomposition {",
        "  std::uint32_t cp;",
        "  std::uint16_t at;",
        "  std::uint8_t len;",
        "  bool compat;",
        "};",
        "struct Composition {",
        "  std::uint32_t first, second, composite;",
        "};",
        "inline constexpr CccRange ccc_ranges[] = {",
    ]

    def rows(items, per):
        for i in range(0, len(items), per):
            lines.append("    " + ",".join(items[i:i + per]) + ",")

    rows([f"{{0x{a:X},0x{b:X},{c}}}" for a, b, c in ranges], 6)
    lines += ["};", "inline constexpr Decomposition decompositions[] = {"]
    rows([f"{{0x{cp:X},{at},{n},{c}}}" for cp, at, n, c in entries], 8)
    lines += ["};", "inline constexpr std::uint32_t decomposition_chars[] = {"]
    rows([f"0x{c:X}" for c in chars], 14)
    lines += ["};", "inline constexpr Composition compositions[] = {"]
    rows([f"{{0x{a:X},0x{b:X},0x{c:X}}}" for a, b, c in comps], 6)
    lines += ["};", "}  // namespace pdiff::unicode::detail", ""]
    with open(OUT, "w") as f:
        f.write("\n".join(lines))
    print(f"Unicode {v}: {len(ranges)} ccc ranges, {len(entries)} decompositions ({len(chars)} chars), "
          f"{len(comps)} compositions")


if __name__ == "__main__":
    main()
