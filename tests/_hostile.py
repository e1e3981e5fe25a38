#!/usr/bin/env python3
"""Writes the hostile archive corpus for tests/archive_hostile_test.ts.

Usage: python3 tests/_hostile.py <output dir>

Every case is one file named after it. Headers are packed by hand (struct)
so that the hostile structures tarfile and zipfile refuse to write can be
made, and the big cases (a 50 MB pax record, a 2 GiB gzip bomb) are written
piece by piece instead of being built in memory. Standard library only.
"""

import bz2
import os
import struct
import sys
import zlib

BLOCK = 512
MTIME = 1_700_000_000

# ---------------------------------------------------------------- tar


def octal(value, width):
    """A NUL-terminated octal field of `width` bytes."""
    text = b"%0*o" % (width - 1, value)
    if len(text) > width - 1:
        raise ValueError(f"{value} does not fit in {width} bytes")
    return text + b"\0"


def field(raw, width):
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    if len(raw) > width:
        raise ValueError(f"{raw!r} is longer than {width} bytes")
    return raw + b"\0" * (width - len(raw))


def tar_header(name, size=0, typeflag=b"0", mode=0o644, linkname=b"",
               devmajor=0, devminor=0, prefix=b"", bad_checksum=False):
    """One ustar header block, with a correct checksum unless asked."""
    header = b"".join([
        field(name, 100),
        octal(mode, 8),
        octal(1000, 8),
        octal(1000, 8),
        octal(size, 12),
        octal(MTIME, 12),
        b" " * 8,
        typeflag,
        field(linkname, 100),
        b"ustar\x0000",
        field(b"user", 32),
        field(b"group", 32),
        octal(devmajor, 8),
        octal(devminor, 8),
        field(prefix, 155),
        b"\0" * 12,
    ])
    assert len(header) == BLOCK
    checksum = sum(header)
    if bad_checksum:
        checksum += 1
    return header[:148] + b"%06o\0 " % checksum + header[156:]


def pad(data):
    return data + b"\0" * (-len(data) % BLOCK)


def tar_file(name, data=b"", mode=0o644, typeflag=b"0"):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return tar_header(name, len(data), typeflag, mode) + pad(data)


def tar_dir(name, mode=0o755):
    return tar_header(name, 0, b"5", mode)


def tar_symlink(name, target):
    return tar_header(name, 0, b"2", 0o777, target)


def tar_hardlink(name, target):
    return tar_header(name, 0, b"1", 0o644, target)


def pax_record(key, value):
    """`<len> key=value\\n`, where len counts the whole record."""
    if isinstance(value, str):
        value = value.encode("utf-8")
    body = b" " + key.encode("ascii") + b"=" + value + b"\n"
    length = len(body) + 1
    while len(b"%d" % length) + len(body) != length:
        length = len(b"%d" % length) + len(body)
    return b"%d" % length + body


def tar_pax(records, name="PaxHeaders/entry"):
    data = b"".join(pax_record(k, v) for k, v in records)
    return tar_header(name, len(data), b"x") + pad(data)


def tar_gnu_longname(longname):
    data = longname.encode("utf-8") + b"\0"
    return tar_header("././@LongLink", len(data), b"L") + pad(data)


END = b"\0" * (2 * BLOCK)
INNOCENT = tar_dir("ok/") + tar_file("ok/hello.txt", "hello\n")


def tar(*members):
    return INNOCENT + b"".join(members) + END


def gzip_bytes(data):
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    return compressor.compress(data) + compressor.flush()


def write(out, name, data):
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)


def write_tar_cases(out):
    write(out, "tar_good.tar", tar(
        tar_dir("ok/sub/"),
        tar_file("ok/sub/data.bin", bytes(range(256)) * 40, 0o600),
        tar_file("ok/run.sh", "#!/bin/sh\n", 0o755),
    ))
    write(out, "tar_good_links.tar", tar(
        tar_symlink("ok/link", "hello.txt"),
        tar_symlink("ok/up", "../ok/hello.txt"),
        tar_hardlink("ok/hard", "ok/hello.txt"),
    ))
    write(out, "tar_good.tgz", gzip_bytes(tar(tar_file("ok/more.txt", "x" * 5000))))

    # Names that climb out or are absolute, directly and through overrides.
    write(out, "tar_dotdot.tar", tar(tar_file("../evil", "evil\n")))
    write(out, "tar_nested_dotdot.tar", tar(tar_file("ok/../../evil", "evil\n")))
    write(out, "tar_absolute.tar", tar(tar_file("/tmp/evil", "evil\n")))
    write(out, "tar_pax_path.tar", tar(
        tar_pax([("path", "../x")]), tar_file("innocent.txt", "evil\n"),
    ))
    write(out, "tar_gnu_longname.tar", tar(
        tar_gnu_longname("../x"), tar_file("innocent.txt", "evil\n"),
    ))
    write(out, "tar_gnu_longlink.tar", tar(
        tar_header("././@LongLink", 12, b"K") + pad(b"../outside\0\0"),
        tar_symlink("l", "innocent"),
    ))

    # Links.
    write(out, "tar_dir_then_symlink.tar", tar(
        tar_dir("d/"),
        tar_symlink("d", "../outside"),
        tar_file("d/x", "written through the link\n"),
    ))
    write(out, "tar_symlink_escape.tar", tar(
        tar_symlink("l", "../outside"),
        tar_file("l/pwned", "pwned\n"),
    ))
    write(out, "tar_symlink_escape_alone.tar", tar(tar_symlink("l", "../outside")))
    write(out, "tar_symlink_dotdot_alone.tar", tar(tar_symlink("l", "..")))
    write(out, "tar_symlink_absolute.tar", tar(tar_symlink("l", "/etc")))
    write(out, "tar_symlink_dotdot.tar", tar(
        tar_symlink("l", ".."),
        tar_file("l/secret", "overwritten\n"),
    ))
    write(out, "tar_symlink_chain.tar", tar(
        tar_symlink("ok/a", "."),
        tar_symlink("ok/b", "a/a/../.."),
        tar_file("ok/b/pwned", "pwned\n"),
    ))
    write(out, "tar_hardlink_victim.tar", tar(tar_hardlink("h", "../victim/secret")))
    write(out, "tar_hardlink_passwd.tar", tar(tar_hardlink("h", "/etc/passwd")))

    # Names that collide.
    write(out, "tar_case_collision.tar", tar(
        tar_file("README", "upper\n"), tar_file("readme", "lower\n"),
    ))
    write(out, "tar_nfc_collision.tar", tar(
        tar_file("caf\u00e9.txt", "precomposed\n"),
        tar_file("cafe\u0301.txt", "decomposed\n"),
    ))
    write(out, "tar_duplicate.tar", tar(
        tar_file("dup.txt", "first\n"), tar_file("dup.txt", "second\n"),
    ))
    write(out, "tar_file_then_dir.tar", tar(
        tar_file("same", "file\n"), tar_dir("same/"), tar_file("same/x", "x\n"),
    ))

    # Entry types and modes sluice refuses.
    write(out, "tar_fifo.tar", tar(tar_header("fifo", 0, b"6")))
    write(out, "tar_chardev.tar", tar(tar_header("null", 0, b"3", 0o666, b"", 1, 3)))
    write(out, "tar_blockdev.tar", tar(tar_header("sda", 0, b"4", 0o660, b"", 8, 0)))
    write(out, "tar_setuid.tar", tar(tar_file("suid", "#!/bin/sh\n", 0o4755)))
    write(out, "tar_setgid.tar", tar(tar_file("sgid", "#!/bin/sh\n", 0o2755)))
    write(out, "tar_sparse.tar", tar(tar_header("sparse", 512, b"S") + pad(b"s" * 512)))

    # Structure.
    smuggled = tar_file("../evil", "evil\n")
    write(out, "tar_symlink_with_data.tar", tar(
        tar_header("l", len(smuggled), b"2", 0o777, b"ok/hello.txt") + smuggled,
    ))
    write(out, "tar_dir_with_data.tar", tar(
        tar_header("dd/", len(smuggled), b"5", 0o755) + smuggled,
    ))
    write(out, "tar_bad_checksum.tar", tar(
        tar_header("bad.txt", 6, bad_checksum=True) + pad(b"hello\n"),
    ))
    write(out, "tar_garbage_end.tar", INNOCENT + bytes(
        (i * 7 + 1) % 256 or 1 for i in range(2 * BLOCK)
    ))

    # Truncations: the full archive is INNOCENT + a 3000-byte file + END.
    full = INNOCENT + tar_file("big.bin", b"b" * 3000) + END
    second = len(INNOCENT)
    write(out, "tar_trunc_first_header.tar", full[:100])
    write(out, "tar_trunc_header.tar", full[:second + 300])
    write(out, "tar_trunc_data.tar", full[:second + BLOCK + 1000])
    write(out, "tar_trunc_padding.tar", full[:second + BLOCK + 3000])
    write(out, "tar_no_end_blocks.tar", full[:-2 * BLOCK])
    write(out, "tgz_truncated.tgz", gzip_bytes(full)[:-20])

    # Names no file system should see.
    write(out, "tar_backslash.tar", tar(tar_file("a\\b", "x\n")))
    write(out, "tar_backslash_dotdot.tar", tar(tar_file("..\\..\\evil", "x\n")))
    write(out, "tar_drive.tar", tar(tar_file("C:/x", "x\n")))
    write(out, "tar_control.tar", tar(tar_file("a\x07b", "x\n")))
    write(out, "tar_newline.tar", tar(tar_file("a\nb", "x\n")))
    write(out, "tar_pax_nul.tar", tar(
        tar_pax([("path", "a\0b")]), tar_file("innocent.txt", "x\n"),
    ))
    write(out, "tar_empty_name.tar", tar(tar_file("", "x\n")))

    write_big_pax(out)
    write_gzip_bomb(out)


def write_big_pax(out):
    """A pax header whose one `comment` record is 50 MB, written in pieces."""
    value_length = 50 * 1000 * 1000
    key = b" comment="
    body = len(key) + value_length + 1
    length = body + 1
    while len(b"%d" % length) + body != length:
        length = len(b"%d" % length) + body
    piece = b"A" * (1 << 20)
    with open(os.path.join(out, "tar_pax_50mb.tar"), "wb") as f:
        f.write(INNOCENT)
        f.write(tar_header("PaxHeaders/huge", length, b"x"))
        f.write(b"%d" % length + key)
        left = value_length
        while left > 0:
            f.write(piece[:min(left, len(piece))])
            left -= min(left, len(piece))
        f.write(b"\n")
        f.write(b"\0" * (-length % BLOCK))
        f.write(tar_file("after.txt", "x\n"))
        f.write(END)


def write_gzip_bomb(out):
    """A .tgz of one 2 GiB file of zeros, about 2 MB on disk.

    Each MiB of zeros is compressed once and ended with a full flush, which
    resets the compressor, so every MiB compresses to the same bytes; the
    stream is that piece repeated, framed as one gzip member by hand.
    """
    mib = 1 << 20
    zeros = bytes(mib)
    count = 2048
    header = INNOCENT + tar_header("zeros.bin", count * mib)
    tail = END
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = deflate.compress(header) + deflate.flush(zlib.Z_FULL_FLUSH)
    repeat = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH)
    check = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH)
    assert repeat == check
    crc = zlib.crc32(header)
    for _ in range(count):
        crc = zlib.crc32(zeros, crc)
    crc = zlib.crc32(tail, crc)
    total = len(header) + count * mib + len(tail)
    with open(os.path.join(out, "tgz_bomb.tgz"), "wb") as f:
        f.write(b"\x1f\x8b\x08\x00" + struct.pack("<I", MTIME) + b"\x02\x03")
        f.write(head)
        for _ in range(count - 1):  # `check` already holds one MiB
            f.write(repeat)
        f.write(check)
        f.write(deflate.compress(tail) + deflate.flush(zlib.Z_FINISH))
        f.write(struct.pack("<II", crc, total & 0xFFFFFFFF))


# ---------------------------------------------------------------- zip

LOCAL = 0x04034B50
CENTRAL = 0x02014B50
EOCD = 0x06054B50
DESCRIPTOR = 0x08074B50
UTF8 = 1 << 11
DOS_TIME = 0
DOS_DATE = (44 << 9) | (1 << 5) | 1  # 2024-01-01


def deflate_raw(data):
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


class ZipEntry:
    """One zip member; every field the writer puts in a header can be overridden."""

    def __init__(self, name, data=b"", method=0, **overrides):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.name = name.encode("utf-8") if isinstance(name, str) else name
        self.data = data
        self.method = method
        if method == 8:
            self.payload = deflate_raw(data)
        else:
            self.payload = data
        self.crc = zlib.crc32(data)
        self.flags = UTF8
        self.mode = 0o40755 if self.name.endswith(b"/") else 0o100644
        self.descriptor = None  # bytes written after the payload
        self.local_name = None
        self.local_crc = None
        self.local_csize = None
        self.local_usize = None
        self.central_crc = None
        self.central_csize = None
        self.central_usize = None
        self.central_offset = None
        for key, value in overrides.items():
            if not hasattr(self, key):
                raise AttributeError(key)
            setattr(self, key, value)

    def pick(self, value, default):
        return default if value is None else value

    def local(self):
        name = self.pick(self.local_name, self.name)
        return struct.pack(
            "<IHHHHHIIIHH", LOCAL, 20, self.flags, self.method, DOS_TIME,
            DOS_DATE, self.pick(self.local_crc, self.crc),
            self.pick(self.local_csize, len(self.payload)),
            self.pick(self.local_usize, len(self.data)), len(name), 0,
        ) + name + self.payload + (self.descriptor or b"")

    def central(self, offset):
        return struct.pack(
            "<IHHHHHHIIIHHHHHII", CENTRAL, (3 << 8) | 20, 20, self.flags,
            self.method, DOS_TIME, DOS_DATE,
            self.pick(self.central_crc, self.crc),
            self.pick(self.central_csize, len(self.payload)),
            self.pick(self.central_usize, len(self.data)), len(self.name), 0,
            0, 0, 0, self.mode << 16, self.pick(self.central_offset, offset),
        ) + self.name


def zip_bytes(entries, prefix=b"", suffix=b"", extra_central=(), disk=0,
              central_entries=None, central=True):
    """A zip of `entries`; offsets count from the start of the zip proper.

    `central_entries` (a list of (entry, local index)) replaces the central
    directory, `extra_central` appends records to it.
    """
    out = bytearray()
    offsets = []
    for entry in entries:
        offsets.append(len(out))
        out += entry.local()
    if not central:
        return prefix + bytes(out)
    records = central_entries or [(e, i) for i, e in enumerate(entries)]
    records = list(records) + list(extra_central)
    cd_offset = len(out)
    for entry, index in records:
        out += entry.central(offsets[index])
    cd_size = len(out) - cd_offset
    out += struct.pack(
        "<IHHHHIIH", EOCD, disk, disk, len(records), len(records), cd_size,
        cd_offset, 0,
    )
    return prefix + bytes(out) + suffix


def innocent_zip():
    return [ZipEntry("ok/"), ZipEntry("ok/hello.txt", "hello\n")]


def descriptor(crc, csize, usize):
    return struct.pack("<IIII", DESCRIPTOR, crc, csize, usize)


def write_zip_cases(out):
    text = b"the quick brown fox jumps over the lazy dog\n" * 50
    write(out, "zip_good.zip", zip_bytes(innocent_zip() + [
        ZipEntry("ok/stored.txt", text),
        ZipEntry("ok/deflated.txt", text, method=8),
    ]))
    good_dd = ZipEntry("ok/dd.txt", text, method=8, flags=UTF8 | 8,
                       local_crc=0, local_csize=0, local_usize=0)
    good_dd.descriptor = descriptor(good_dd.crc, len(good_dd.payload), len(text))
    write(out, "zip_good_dd.zip", zip_bytes(innocent_zip() + [good_dd]))

    write(out, "zip_name_mismatch.zip", zip_bytes(innocent_zip() + [
        ZipEntry("b.txt", "data\n", local_name=b"a.txt"),
    ]))
    entries = innocent_zip() + [ZipEntry("a.txt", "aaaa\n"), ZipEntry("b.txt", "bbbb\n")]
    write(out, "zip_overlap.zip", zip_bytes(
        entries, extra_central=[(ZipEntry("a.txt", "aaaa\n"), 2)],
    ))
    write(out, "zip_central_points_elsewhere.zip", zip_bytes(
        entries,
        central_entries=[(entries[0], 0), (entries[1], 1), (entries[2], 2),
                         (ZipEntry("b.txt", "bbbb\n"), 2)],
    ))

    bad = zlib.crc32(text) ^ 0x5A5A5A5A
    write(out, "zip_crc.zip", zip_bytes(innocent_zip() + [
        ZipEntry("c.txt", text, local_crc=bad, central_crc=bad),
    ]))
    write(out, "zip_crc_deflate.zip", zip_bytes(innocent_zip() + [
        ZipEntry("c.txt", text, method=8, local_crc=bad, central_crc=bad),
    ]))
    n = len(text)
    write(out, "zip_size_smaller.zip", zip_bytes(innocent_zip() + [
        ZipEntry("s.txt", text, method=8, local_usize=n - 100, central_usize=n - 100),
    ]))
    write(out, "zip_size_bigger.zip", zip_bytes(innocent_zip() + [
        ZipEntry("s.txt", text, method=8, local_usize=n + 100, central_usize=n + 100),
    ]))
    # A stored entry whose local header claims 5 bytes (with their CRC) while
    # the central directory claims all of them.
    write(out, "zip_stored_size_lie.zip", zip_bytes(innocent_zip() + [
        ZipEntry("s.txt", text, local_csize=5, local_usize=5,
                 local_crc=zlib.crc32(text[:5])),
        ZipEntry("t.txt", "t\n"),
    ]))

    stored_dd = ZipEntry("s.txt", text, flags=UTF8 | 8, local_crc=0,
                         local_csize=0, local_usize=0)
    stored_dd.descriptor = descriptor(stored_dd.crc, n, n)
    write(out, "zip_stored_dd.zip", zip_bytes(innocent_zip() + [stored_dd]))
    fake_dd = ZipEntry("f.txt", text, method=8, flags=UTF8 | 8, local_crc=0,
                       local_csize=0, local_usize=0)
    fake_dd.descriptor = descriptor(bad, 7, 7)
    write(out, "zip_fake_dd.zip", zip_bytes(innocent_zip() + [fake_dd]))

    good = innocent_zip() + [ZipEntry("ok/more.txt", text)]
    write(out, "zip_prepended.zip", zip_bytes(good, prefix=b"MZ junk before the zip " * 8))
    write(out, "zip_appended.zip", zip_bytes(good, suffix=b"junk after the end record" * 4))
    write(out, "zip_truncated_no_central.zip", zip_bytes(good, central=False))
    into_more = sum(len(e.local()) for e in innocent_zip()) + 30 + 11 + 200
    write(out, "zip_truncated_data.zip", zip_bytes(good)[:into_more])

    write(out, "zip_encrypted.zip", zip_bytes(innocent_zip() + [
        ZipEntry("secret.txt", bytes(12) + b"ciphertext", flags=UTF8 | 1,
                 local_usize=10, central_usize=10),
    ]))
    bzip = ZipEntry("b.txt", text)
    bzip.method = 12
    bzip.payload = bz2.compress(text)
    write(out, "zip_bzip2.zip", zip_bytes(innocent_zip() + [bzip]))
    write(out, "zip_split_marker.zip", struct.pack("<I", DESCRIPTOR) + zip_bytes(good))
    write(out, "zip_split_disk.zip", zip_bytes(good, disk=1))

    write(out, "zip_dotdot.zip", zip_bytes(innocent_zip() + [ZipEntry("../x", "evil\n")]))
    write(out, "zip_nested_dotdot.zip", zip_bytes(innocent_zip() + [
        ZipEntry("ok/../../x", "evil\n"),
    ]))
    write(out, "zip_backslash_dotdot.zip", zip_bytes(innocent_zip() + [
        ZipEntry("..\\x", "evil\n"),
    ]))
    write(out, "zip_symlink_escape.zip", zip_bytes(innocent_zip() + [
        ZipEntry("l", "../outside", mode=0o120777),
    ]))
    write(out, "zip_absolute.zip", zip_bytes(innocent_zip() + [ZipEntry("/tmp/evil", "evil\n")]))


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: _hostile.py <output dir>")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    write_tar_cases(out)
    write_zip_cases(out)


if __name__ == "__main__":
    main()
