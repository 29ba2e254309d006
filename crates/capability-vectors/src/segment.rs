//! An index on disk: a log of sealed frames, each a batch of puts or deletes, appended in the
//! order they were applied. Loading replays it (no re-embedding, no rebuilding beyond the
//! in-memory arrays); compaction rewrites it as puts of the live entries only, to a new file
//! renamed over the old, so a crash leaves either whole. A frame cut short by a crash mid-write
//! (the last one) is dropped at load and cut off before the next append; any other frame that
//! does not open means the file was damaged, and the index refuses to load rather than serve
//! part of it.
//!
//! Frame: `u32` length of the sealed bytes, `i64` version of the namespace's data key, the sealed
//! bytes. Sealed payload: `1` and puts, or `2` and deleted ids, in a plain length-prefixed
//! little-endian encoding.

use std::sync::Arc;

use crate::index::{Entry, Provenance};

/// The first bytes of every index file.
pub const MAGIC: &[u8; 8] = b"TRVEC01\n";

/// One applied change.
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    Put(Vec<Entry>),
    Delete(Vec<Arc<str>>),
}

/// A frame before it is opened.
pub struct SealedFrame<'a> {
    pub key_version: i64,
    pub sealed: &'a [u8],
}

/// What a file holds: its frames, and how many bytes of it are whole.
pub struct Frames<'a> {
    pub frames: Vec<SealedFrame<'a>>,
    /// The file's length up to the end of its last whole frame.
    pub whole_len: usize,
}

/// Splits a file into frames; a torn last frame is left out of `whole_len`.
pub fn frames(file: &[u8]) -> Result<Frames<'_>, String> {
    if file.is_empty() {
        return Ok(Frames { frames: Vec::new(), whole_len: 0 });
    }
    if file.len() < MAGIC.len() {
        // A crash before the header was whole: nothing was ever appended.
        return Ok(Frames { frames: Vec::new(), whole_len: 0 });
    }
    if &file[..MAGIC.len()] != MAGIC {
        return Err("it is not a vector index file (its header is wrong)".to_owned());
    }
    let mut at = MAGIC.len();
    let mut frames = Vec::new();
    while file.len() - at >= 12 {
        let length = u32::from_le_bytes(file[at..at + 4].try_into().expect("4 bytes")) as usize;
        let key_version = i64::from_le_bytes(file[at + 4..at + 12].try_into().expect("8 bytes"));
        let Some(sealed) = file.get(at + 12..at + 12 + length) else { break };
        frames.push(SealedFrame { key_version, sealed });
        at += 12 + length;
    }
    Ok(Frames { frames, whole_len: at })
}

/// A frame as appended to the file.
pub fn frame(key_version: i64, sealed: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + sealed.len());
    out.extend_from_slice(&u32::try_from(sealed.len()).expect("a frame under 4 GiB").to_le_bytes());
    out.extend_from_slice(&key_version.to_le_bytes());
    out.extend_from_slice(sealed);
    out
}

pub fn encode(record: &Record) -> Vec<u8> {
    let mut out = Writer(Vec::new());
    match record {
        Record::Put(entries) => {
            out.0.push(1);
            out.u32(entries.len() as u32);
            for entry in entries {
                out.text(&entry.id);
                out.optional_text(entry.namespace.as_deref());
                out.u32(entry.values.len() as u32);
                for value in entry.values.iter() {
                    out.0.extend_from_slice(&value.to_le_bytes());
                }
                let metadata =
                    entry.metadata.as_ref().map(|metadata| serde_json::Value::Object(metadata.clone()).to_string());
                out.optional_text(metadata.as_deref());
                out.optional_text(entry.text.as_deref());
                let provenance =
                    entry.provenance.as_ref().and_then(|provenance| serde_json::to_string(provenance).ok());
                out.optional_text(provenance.as_deref());
                match &entry.fingerprint {
                    Some(fingerprint) => {
                        out.0.push(1);
                        out.0.extend_from_slice(fingerprint);
                    }
                    None => out.0.push(0),
                }
                match entry.expires_at {
                    Some(expires_at) => {
                        out.0.push(1);
                        out.0.extend_from_slice(&expires_at.to_le_bytes());
                    }
                    None => out.0.push(0),
                }
            }
        }
        Record::Delete(ids) => {
            out.0.push(2);
            out.u32(ids.len() as u32);
            for id in ids {
                out.text(id);
            }
        }
    }
    out.0
}

pub fn decode(bytes: &[u8]) -> Result<Record, String> {
    let mut reader = Reader { bytes, at: 0 };
    let record = match reader.byte()? {
        1 => {
            let count = reader.u32()?;
            let mut entries = Vec::with_capacity(count.min(4096) as usize);
            for _ in 0..count {
                let id: Arc<str> = reader.text()?.into();
                let namespace = reader.optional_text()?;
                let dimensions = reader.u32()? as usize;
                let raw = reader.take(dimensions.checked_mul(4).ok_or("too many dimensions")?)?;
                let values: Arc<[f32]> =
                    raw.chunks_exact(4).map(|bytes| f32::from_le_bytes(bytes.try_into().expect("4 bytes"))).collect();
                let metadata = match reader.optional_text()? {
                    Some(json) => match serde_json::from_str(&json).map_err(|error| error.to_string())? {
                        serde_json::Value::Object(metadata) => Some(metadata),
                        _ => return Err("metadata is not an object".to_owned()),
                    },
                    None => None,
                };
                let text = reader.optional_text()?.map(Arc::from);
                let provenance = match reader.optional_text()? {
                    Some(json) => Some(serde_json::from_str::<Provenance>(&json).map_err(|error| error.to_string())?),
                    None => None,
                };
                let fingerprint = match reader.byte()? {
                    0 => None,
                    _ => Some(reader.take(32)?.try_into().expect("32 bytes")),
                };
                let expires_at = match reader.byte()? {
                    0 => None,
                    _ => Some(i64::from_le_bytes(reader.take(8)?.try_into().expect("8 bytes"))),
                };
                entries.push(Entry { id, namespace, values, metadata, text, provenance, fingerprint, expires_at });
            }
            Record::Put(entries)
        }
        2 => {
            let count = reader.u32()?;
            let mut ids = Vec::with_capacity(count.min(4096) as usize);
            for _ in 0..count {
                ids.push(Arc::from(reader.text()?));
            }
            Record::Delete(ids)
        }
        other => return Err(format!("unknown record kind {other}")),
    };
    if reader.at != bytes.len() {
        return Err("trailing bytes after the record".to_owned());
    }
    Ok(record)
}

struct Writer(Vec<u8>);

impl Writer {
    fn u32(&mut self, value: u32) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }

    fn text(&mut self, text: &str) {
        self.u32(text.len() as u32);
        self.0.extend_from_slice(text.as_bytes());
    }

    fn optional_text(&mut self, text: Option<&str>) {
        match text {
            Some(text) => {
                self.0.push(1);
                self.text(text);
            }
            None => self.0.push(0),
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(count).filter(|end| *end <= self.bytes.len()).ok_or("the record is cut short")?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn byte(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }

    fn text(&mut self) -> Result<String, String> {
        let length = self.u32()? as usize;
        String::from_utf8(self.take(length)?.to_vec()).map_err(|_| "text that is not UTF-8".to_owned())
    }

    fn optional_text(&mut self) -> Result<Option<String>, String> {
        match self.byte()? {
            0 => Ok(None),
            _ => self.text().map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let entry = Entry {
            id: "page-1".into(),
            namespace: Some("wiki".to_owned()),
            values: vec![0.5, -1.25, 3.0].into(),
            metadata: serde_json::json!({ "team": "docs", "n": 3 }).as_object().cloned(),
            text: Some("Ask [PERSON] about the VPN".into()),
            provenance: Some(Provenance {
                source: "team/wiki".to_owned(),
                author: Some("alice".to_owned()),
                ingested_at: "2026-12-06T00:00:00Z".to_owned(),
                revision: 3,
                redacted: vec!["PERSON".to_owned()],
            }),
            fingerprint: Some([7; 32]),
            expires_at: Some(1_900_000_000),
        };
        let bare = Entry {
            id: "b".into(),
            namespace: None,
            values: vec![1.0].into(),
            metadata: None,
            text: None,
            provenance: None,
            fingerprint: None,
            expires_at: None,
        };
        for record in [Record::Put(vec![entry, bare]), Record::Delete(vec!["a".into(), "b".into()])] {
            assert_eq!(decode(&encode(&record)).unwrap(), record);
        }
        let encoded = encode(&Record::Delete(vec!["abc".into()]));
        assert!(decode(&encoded[..encoded.len() - 1]).is_err());
    }

    #[test]
    fn a_torn_last_frame_is_left_out() {
        let mut file = MAGIC.to_vec();
        file.extend(frame(1, b"first"));
        file.extend(frame(2, b"second"));
        let whole = file.len();
        file.extend(&frame(3, b"third")[..9]);
        let frames = frames(&file).unwrap();
        assert_eq!(frames.frames.len(), 2);
        assert_eq!(frames.frames[1].key_version, 2);
        assert_eq!(frames.frames[1].sealed, b"second");
        assert_eq!(frames.whole_len, whole);
        assert!(super::frames(b"not an index").is_err());
        assert_eq!(super::frames(&MAGIC[..3]).unwrap().whole_len, 0);
    }
}
