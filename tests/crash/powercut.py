"""Power cut for crash.py --power-loss: undoes the writes no sync covered.

iolog.c (LD_PRELOAD into pvwatch) logs every write to the files of the work
directory with the bytes it replaced, and every fsync/fdatasync. After pvwatch
was killed, cut() turns the files (which hold everything written: the page
cache survived the kill) into one state the disk could hold had the power
failed at that moment:

- everything a sync covered stays (a write logged before the file's last
  'S' record; the record is logged when the sync begins, so a write that
  raced with it counts as not covered);
- of the bytes an uncovered write replaced inside the file's size at the
  last sync, each 512-byte sector independently keeps the new bytes or gets
  its bytes of the last sync back (sectors are written whole, in any order);
- what uncovered writes appended past that size is kept up to a random
  write boundary and cut there (ext4's ordered mode never shows a later
  appended block without the earlier ones, nor stale or zero blocks);
- truncations are taken as durable (SQLite truncates the database at the
  end of a checkpoint, just before it syncs it);
- a file written through stdio (the alert log: iolog.c cannot see those
  writes) is only appended to: what it grew by since its last sync (or
  since the start of the run) is cut at a random 512-byte boundary, or kept.

Files are created and renamed durably here (directory entries are not
modelled). Running it standalone prints what a cut would do:

    python3 powercut.py LOG [--seed N] [--apply]
"""

import os
import struct
import sys

SECTOR = 512


def read_log(path):
    """The log's records as tuples; a record cut short at the end (the
    kill came while it was written) is dropped."""
    with open(path, "rb") as f:
        data = f.read()
    recs, paths, i, n = [], {}, 0, len(data)
    while i < n:
        kind = data[i:i + 1]
        try:
            if kind == b"P":
                fid, ln = struct.unpack_from("<II", data, i + 1)
                if i + 9 + ln > n:
                    break
                paths[fid] = data[i + 9:i + 9 + ln].decode("utf-8", "replace")
                i += 9 + ln
            elif kind == b"W":
                fid, off, ln, size, got = struct.unpack_from("<IQIQI", data, i + 1)
                if i + 29 + got > n:
                    break
                recs.append(("W", fid, off, ln, size, data[i + 29:i + 29 + got]))
                i += 29 + got
            elif kind == b"S":
                fid, size = struct.unpack_from("<IQ", data, i + 1)
                recs.append(("S", fid, size))
                i += 13
            elif kind == b"T":
                fid, before, after = struct.unpack_from("<IQQ", data, i + 1)
                recs.append(("T", fid, before, after))
                i += 21
            else:
                raise ValueError("iolog: bad record %r at byte %d of %s"
                                 % (kind, i, path))
        except struct.error:
            break
    return paths, recs


def plan(paths, recs, rng, appended=None):
    """What the cut does to each file: {path: (undo list, new size or None,
    stats)}. Undo entries are (offset, bytes), to be applied in order.
    appended: {path: size at the start of the run} of the files written
    through stdio."""
    last_sync, synced_size = {}, {}
    for idx, r in enumerate(recs):
        if r[0] == "S":
            last_sync[r[1]] = idx
            synced_size[paths.get(r[1])] = r[2]
    out = {}
    for path, start_size in (appended or {}).items():
        try:
            size = os.path.getsize(path)
        except OSError:
            continue
        durable = synced_size.get(path, start_size)
        stats = {"writes": 0, "sectors": 0, "reverted": 0,
                 "appended": max(0, size - durable), "cut": 0}
        if size > durable:
            points = list(range(durable - durable % SECTOR + SECTOR, size,
                                SECTOR))
            cut_at = rng.choice([durable] + points + [size, size])
            if cut_at < size:
                stats["cut"] = size - cut_at
                out[path] = ([], cut_at, stats)
                continue
        out[path] = ([], None, stats)
    for fid, path in paths.items():
        if path in out:
            continue
        first = last_sync.get(fid, -1) + 1
        writes = [r for r in recs[first:] if r[0] == "W" and r[1] == fid]
        if not writes:
            continue
        synced_size = writes[0][4]
        # Sectors inside the synced size: keep or revert, each on its own.
        revert = {}
        undo = []
        for _, _, off, ln, size, old in reversed(writes):
            end = min(off + len(old), synced_size)
            s = off - off % SECTOR
            while s < end:
                lo, hi = max(s, off), min(s + SECTOR, end)
                if s not in revert:
                    revert[s] = rng.random() < 0.5
                if revert[s] and hi > lo:
                    undo.append((lo, old[lo - off:hi - off]))
                s += SECTOR
        # Appends past the synced size: a prefix of them survives.
        ends = sorted({off + ln for _, _, off, ln, _, _ in writes
                       if off + ln > synced_size})
        new_size = None
        if ends:
            cut_at = rng.choice([synced_size] + ends)
            if cut_at < ends[-1]:
                new_size = cut_at
        stats = {"writes": len(writes), "sectors": len(revert),
                 "reverted": sum(revert.values()),
                 "appended": (ends[-1] - synced_size) if ends else 0,
                 "cut": (ends[-1] - new_size) if new_size is not None else 0}
        out[path] = (undo, new_size, stats)
    return out


def cut(log_path, rng, appended=None, apply=True):
    """Applies a power cut to the files log_path names, and to the files
    of appended ({path: size at the start of the run}) written through
    stdio; returns {path: stats} and the number of records read."""
    if not os.path.exists(log_path):
        # Killed before iolog.c's constructor ran (a kill during the
        # start): pvwatch wrote nothing yet.
        return {}, 0
    paths, recs = read_log(log_path)
    p = plan(paths, recs, rng, appended)
    if apply:
        for path, (undo, new_size, _) in p.items():
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:
                continue
            try:
                size = os.fstat(fd).st_size
                for off, old in undo:
                    if off < size:
                        os.pwrite(fd, old[:max(0, size - off)], off)
                if new_size is not None and new_size < size:
                    os.ftruncate(fd, new_size)
                os.fsync(fd)
            finally:
                os.close(fd)
    return {path: st for path, (_, _, st) in p.items()}, len(recs)


if __name__ == "__main__":
    import argparse
    import random
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("log")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--apply", action="store_true",
                    help="change the files (default: only say what a cut does)")
    a = ap.parse_args()
    stats, n = cut(a.log, random.Random(a.seed), apply=a.apply)
    print("%d records" % n)
    for path, st in sorted(stats.items()):
        print("%s: %s" % (path, st))
    sys.exit(0)
