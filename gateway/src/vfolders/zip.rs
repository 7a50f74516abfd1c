//! A streaming zip writer for folder downloads: entries are stored (not compressed — data
//! folders are mostly already-compressed data, and storing keeps the download at disk speed),
//! each file followed by a data descriptor so nothing needs to be known before its bytes are
//! read, and zip64 records wherever a size or an offset passes 4 GiB. Nothing is buffered
//! beyond one read chunk.

use super::fs;
use axum::body::Bytes;
use std::io::{self, Read};
use std::os::fd::OwnedFd;

const U32_MAX: u64 = 0xFFFF_FFFF;
const CHUNK: usize = 256 * 1024;

struct Central {
    name: Vec<u8>,
    crc: u32,
    size: u64,
    offset: u64,
    dos: (u16, u16),
    external: u32,
    zip64: bool,
}

/// MS-DOS time and date of a unix time (local to UTC; zip has no time zone).
fn dos_time(unix: i64) -> (u16, u16) {
    let t =
        time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    if t.year() < 1980 {
        return (0, (1 << 5) | 1);
    }
    let time =
        (u16::from(t.hour()) << 11) | (u16::from(t.minute()) << 5) | (u16::from(t.second()) / 2);
    let date =
        (((t.year() - 1980).min(127) as u16) << 9) | ((t.month() as u16) << 5) | u16::from(t.day());
    (time, date)
}

fn local_header(c: &Central, dir: bool) -> Vec<u8> {
    let mut h = Vec::with_capacity(30 + c.name.len() + 20);
    h.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
    h.extend_from_slice(&(if c.zip64 { 45u16 } else { 20u16 }).to_le_bytes());
    // Bit 3: sizes and CRC follow in a data descriptor; bit 11: UTF-8 names.
    let flags: u16 = if dir { 0x0800 } else { 0x0808 };
    h.extend_from_slice(&flags.to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes()); // stored
    h.extend_from_slice(&c.dos.0.to_le_bytes());
    h.extend_from_slice(&c.dos.1.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes()); // crc (in the descriptor)
    let sz: u32 = if c.zip64 { u32::MAX } else { 0 };
    h.extend_from_slice(&sz.to_le_bytes());
    h.extend_from_slice(&sz.to_le_bytes());
    h.extend_from_slice(&(c.name.len() as u16).to_le_bytes());
    h.extend_from_slice(&(if c.zip64 { 20u16 } else { 0u16 }).to_le_bytes());
    h.extend_from_slice(&c.name);
    if c.zip64 {
        h.extend_from_slice(&1u16.to_le_bytes());
        h.extend_from_slice(&16u16.to_le_bytes());
        h.extend_from_slice(&0u64.to_le_bytes());
        h.extend_from_slice(&0u64.to_le_bytes());
    }
    h
}

fn descriptor(c: &Central) -> Vec<u8> {
    let mut d = Vec::with_capacity(24);
    d.extend_from_slice(&0x0807_4b50u32.to_le_bytes());
    d.extend_from_slice(&c.crc.to_le_bytes());
    if c.zip64 {
        d.extend_from_slice(&c.size.to_le_bytes());
        d.extend_from_slice(&c.size.to_le_bytes());
    } else {
        d.extend_from_slice(&(c.size as u32).to_le_bytes());
        d.extend_from_slice(&(c.size as u32).to_le_bytes());
    }
    d
}

fn central_record(c: &Central, flags: u16) -> Vec<u8> {
    let big_size = c.size >= U32_MAX || c.zip64;
    let big_off = c.offset >= U32_MAX;
    let mut extra = Vec::new();
    if big_size {
        extra.extend_from_slice(&c.size.to_le_bytes());
        extra.extend_from_slice(&c.size.to_le_bytes());
    }
    if big_off {
        extra.extend_from_slice(&c.offset.to_le_bytes());
    }
    let mut r = Vec::with_capacity(46 + c.name.len() + extra.len() + 4);
    r.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
    let version: u16 = if big_size || big_off { 45 } else { 20 };
    r.extend_from_slice(&((3u16 << 8) | version).to_le_bytes()); // made by: unix
    r.extend_from_slice(&version.to_le_bytes());
    r.extend_from_slice(&flags.to_le_bytes());
    r.extend_from_slice(&0u16.to_le_bytes());
    r.extend_from_slice(&c.dos.0.to_le_bytes());
    r.extend_from_slice(&c.dos.1.to_le_bytes());
    r.extend_from_slice(&c.crc.to_le_bytes());
    let s32 = if big_size { u32::MAX } else { c.size as u32 };
    r.extend_from_slice(&s32.to_le_bytes());
    r.extend_from_slice(&s32.to_le_bytes());
    r.extend_from_slice(&(c.name.len() as u16).to_le_bytes());
    let extra_len = if extra.is_empty() { 0 } else { 4 + extra.len() };
    r.extend_from_slice(&(extra_len as u16).to_le_bytes());
    r.extend_from_slice(&0u16.to_le_bytes()); // comment
    r.extend_from_slice(&0u16.to_le_bytes()); // disk
    r.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
    r.extend_from_slice(&c.external.to_le_bytes());
    let o32 = if big_off { u32::MAX } else { c.offset as u32 };
    r.extend_from_slice(&o32.to_le_bytes());
    r.extend_from_slice(&c.name);
    if !extra.is_empty() {
        r.extend_from_slice(&1u16.to_le_bytes());
        r.extend_from_slice(&(extra.len() as u16).to_le_bytes());
        r.extend_from_slice(&extra);
    }
    r
}

fn end_records(count: u64, cd_offset: u64, cd_size: u64) -> Vec<u8> {
    let mut e = Vec::new();
    let need64 = count >= 0xFFFF || cd_offset >= U32_MAX || cd_size >= U32_MAX;
    if need64 {
        let rec_offset = cd_offset + cd_size;
        e.extend_from_slice(&0x0606_4b50u32.to_le_bytes());
        e.extend_from_slice(&44u64.to_le_bytes());
        e.extend_from_slice(&((3u16 << 8) | 45).to_le_bytes());
        e.extend_from_slice(&45u16.to_le_bytes());
        e.extend_from_slice(&0u32.to_le_bytes());
        e.extend_from_slice(&0u32.to_le_bytes());
        e.extend_from_slice(&count.to_le_bytes());
        e.extend_from_slice(&count.to_le_bytes());
        e.extend_from_slice(&cd_size.to_le_bytes());
        e.extend_from_slice(&cd_offset.to_le_bytes());
        e.extend_from_slice(&0x0706_4b50u32.to_le_bytes());
        e.extend_from_slice(&0u32.to_le_bytes());
        e.extend_from_slice(&rec_offset.to_le_bytes());
        e.extend_from_slice(&1u32.to_le_bytes());
    }
    e.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    e.extend_from_slice(&0u16.to_le_bytes());
    e.extend_from_slice(&0u16.to_le_bytes());
    let c16 = if need64 { u16::MAX } else { count as u16 };
    e.extend_from_slice(&c16.to_le_bytes());
    e.extend_from_slice(&c16.to_le_bytes());
    let s32 = if need64 { u32::MAX } else { cd_size as u32 };
    let o32 = if need64 { u32::MAX } else { cd_offset as u32 };
    e.extend_from_slice(&s32.to_le_bytes());
    e.extend_from_slice(&o32.to_le_bytes());
    e.extend_from_slice(&0u16.to_le_bytes());
    e
}

/// Writes the archive of the tree in `dir` to `send` (on a blocking thread), walking it lazily
/// through handles ([`super::fs::walk`]): only regular files and directories go in, each file
/// read through its parent's handle without following links and only up to the size it had
/// when opened, with permission bits only (never set-uid, set-gid or sticky). Stops when `send`
/// answers `false` (the client went away).
pub fn write(dir: &OwnedFd, send: &mut dyn FnMut(Bytes) -> bool) -> io::Result<()> {
    let gone = || io::Error::new(io::ErrorKind::BrokenPipe, "the client went away");
    let mut offset = 0u64;
    let mut central = Vec::new();
    let mut buf = vec![0u8; CHUNK];
    let mut emit = |b: Vec<u8>, offset: &mut u64| {
        *offset += b.len() as u64;
        if send(Bytes::from(b)) {
            Ok(())
        } else {
            Err(gone())
        }
    };
    let mut central_bytes = 0usize;
    fs::walk(dir, &mut |v| {
        let dir = v.entry.kind == "dir";
        if !dir && v.entry.kind != "file" {
            return Ok(true); // links, FIFOs, sockets and devices are not archived
        }
        // Zip names are at most 65,535 bytes: longer paths (and what is under them) are left
        // out rather than written as a broken archive.
        if v.rel.len() >= usize::from(u16::MAX) {
            return Ok(false);
        }
        let file = if dir {
            None
        } else {
            match fs::open_regular(v.dir, v.name)? {
                Some(f) => Some(f),
                None => return Ok(true), // replaced since the listing
            }
        };
        let mut name = v.rel.as_bytes().to_vec();
        if dir {
            name.push(b'/');
        }
        let size = file.as_ref().map_or(0, |f| f.size);
        let mut c = Central {
            name,
            crc: 0,
            size: 0,
            offset,
            dos: dos_time(v.entry.mtime),
            external: ((v.entry.mode & 0o170777) << 16) | if dir { 0x10 } else { 0 },
            zip64: size >= U32_MAX,
        };
        // The central directory is kept until the end: bounded like a directory's names.
        central_bytes += c.name.len() + 64;
        if central_bytes > fs::MAX_DIR_NAME_BYTES {
            return Err(io::Error::other(
                "the folder holds too many entries for one archive",
            ));
        }
        emit(local_header(&c, dir), &mut offset)?;
        let Some(f) = file else {
            central.push((c, 0x0800u16));
            return Ok(true);
        };
        // At most the size seen at open, so the zip64 decision stays true even when a session
        // appends to the file meanwhile.
        let mut src = f.file.take(size);
        let mut hasher = crc32fast::Hasher::new();
        loop {
            let n = src.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            c.size += n as u64;
            emit(buf[..n].to_vec(), &mut offset)?;
        }
        c.crc = hasher.finalize();
        emit(descriptor(&c), &mut offset)?;
        central.push((c, 0x0808u16));
        Ok(true)
    })?;
    let cd_offset = offset;
    let mut cd_size = 0u64;
    let count = central.len() as u64;
    for (c, flags) in &central {
        let r = central_record(c, *flags);
        cd_size += r.len() as u64;
        emit(r, &mut offset)?;
    }
    emit(end_records(count, cd_offset, cd_size), &mut offset)
}
