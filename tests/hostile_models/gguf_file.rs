//! A GGUF reader and writer for the hostile-file generator: it records where every structure
//! of a real file starts (for truncations and in-place corruption) and writes a file back from
//! edited metadata (for absurd counts, lengths, dimensions and types).

use std::ops::Range;

/// GGUF value type ids.
pub const UINT8: u32 = 0;
pub const INT8: u32 = 1;
pub const UINT16: u32 = 2;
pub const INT16: u32 = 3;
pub const UINT32: u32 = 4;
pub const INT32: u32 = 5;
pub const FLOAT32: u32 = 6;
pub const BOOL: u32 = 7;
pub const STRING: u32 = 8;
pub const ARRAY: u32 = 9;
pub const UINT64: u32 = 10;
pub const INT64: u32 = 11;
pub const FLOAT64: u32 = 12;

/// One metadata value. Scalars keep their raw little-endian bytes so any type round-trips.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar { kind: u32, bytes: Vec<u8> },
    Str(Vec<u8>),
    Array { kind: u32, items: Vec<Value> },
}

impl Value {
    pub fn u32(v: u32) -> Self {
        Value::Scalar {
            kind: UINT32,
            bytes: v.to_le_bytes().to_vec(),
        }
    }
    pub fn i32(v: i32) -> Self {
        Value::Scalar {
            kind: INT32,
            bytes: v.to_le_bytes().to_vec(),
        }
    }
    pub fn f32(v: f32) -> Self {
        Value::Scalar {
            kind: FLOAT32,
            bytes: v.to_le_bytes().to_vec(),
        }
    }
    pub fn str(s: &str) -> Self {
        Value::Str(s.as_bytes().to_vec())
    }
    /// The type id this value is written with.
    pub fn kind(&self) -> u32 {
        match self {
            Value::Scalar { kind, .. } => *kind,
            Value::Str(_) => STRING,
            Value::Array { .. } => ARRAY,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Kv {
    pub key: String,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    pub name: Vec<u8>,
    pub dims: Vec<u64>,
    pub kind: u32,
    /// Offset of the data from the start of the data section.
    pub offset: u64,
    /// Where this info's fields sit in the original file: n_dims, the dims, the type, the offset.
    pub at_n_dims: usize,
    pub at_type: usize,
    pub at_offset: usize,
}

/// A parsed GGUF file.
#[derive(Debug, Clone)]
pub struct Gguf {
    pub version: u32,
    pub kvs: Vec<Kv>,
    pub tensors: Vec<TensorInfo>,
    /// Overrides of the counts written in the header (for absurd-count files).
    pub n_tensors_written: Option<u64>,
    pub n_kv_written: Option<u64>,
    /// The tensor data section of the original file.
    pub data: Range<usize>,
    /// Offsets where a structure starts, with what starts there (in file order).
    pub boundaries: Vec<(usize, String)>,
    /// Byte ranges of each part: header, metadata, tensor infos.
    pub header: Range<usize>,
    pub metadata: Range<usize>,
    pub tensor_infos: Range<usize>,
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> &[u8] {
        let s = &self.bytes[self.at..self.at + n];
        self.at += n;
        s
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take(4).try_into().unwrap())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take(8).try_into().unwrap())
    }
    fn string(&mut self) -> Vec<u8> {
        let n = self.u64() as usize;
        self.take(n).to_vec()
    }
    fn value(&mut self, kind: u32) -> Value {
        match kind {
            STRING => Value::Str(self.string()),
            ARRAY => {
                let kind = self.u32();
                let n = self.u64();
                Value::Array {
                    kind,
                    items: (0..n).map(|_| self.value(kind)).collect(),
                }
            }
            _ => Value::Scalar {
                kind,
                bytes: self.take(scalar_size(kind)).to_vec(),
            },
        }
    }
}

fn scalar_size(kind: u32) -> usize {
    match kind {
        UINT8 | INT8 | BOOL => 1,
        UINT16 | INT16 => 2,
        UINT32 | INT32 | FLOAT32 => 4,
        UINT64 | INT64 | FLOAT64 => 8,
        other => panic!("not a scalar GGUF type: {other}"),
    }
}

impl Gguf {
    /// Parses a well-formed GGUF file (the real test model).
    pub fn parse(bytes: &[u8]) -> Gguf {
        let mut r = Reader { bytes, at: 0 };
        let mut boundaries = vec![(0, "magic".to_string())];
        assert_eq!(r.take(4), b"GGUF");
        boundaries.push((r.at, "version".into()));
        let version = r.u32();
        boundaries.push((r.at, "tensor count".into()));
        let n_tensors = r.u64();
        boundaries.push((r.at, "metadata count".into()));
        let n_kv = r.u64();
        let header = 0..r.at;
        let mut kvs = Vec::new();
        for i in 0..n_kv {
            boundaries.push((r.at, format!("metadata {i} key length")));
            let key_start = r.at + 8;
            let key = String::from_utf8(r.string()).unwrap();
            boundaries.push((key_start, format!("metadata {i} ({key}) key")));
            boundaries.push((r.at, format!("metadata {i} ({key}) type")));
            let kind = r.u32();
            boundaries.push((r.at, format!("metadata {i} ({key}) value")));
            let value = r.value(kind);
            kvs.push(Kv { key, value });
        }
        let metadata = header.end..r.at;
        let mut tensors = Vec::new();
        for i in 0..n_tensors {
            boundaries.push((r.at, format!("tensor info {i} name")));
            let name = r.string();
            let shown = String::from_utf8_lossy(&name).into_owned();
            let at_n_dims = r.at;
            boundaries.push((at_n_dims, format!("tensor info {i} ({shown}) dims")));
            let n_dims = r.u32();
            let dims = (0..n_dims).map(|_| r.u64()).collect();
            let at_type = r.at;
            boundaries.push((at_type, format!("tensor info {i} ({shown}) type")));
            let kind = r.u32();
            let at_offset = r.at;
            boundaries.push((at_offset, format!("tensor info {i} ({shown}) offset")));
            let offset = r.u64();
            tensors.push(TensorInfo {
                name,
                dims,
                kind,
                offset,
                at_n_dims,
                at_type,
                at_offset,
            });
        }
        let tensor_infos = metadata.end..r.at;
        let data_start = r.at.next_multiple_of(alignment(&kvs));
        boundaries.push((r.at, "padding before the data".into()));
        for (i, t) in tensors.iter().enumerate() {
            boundaries.push((
                data_start + t.offset as usize,
                format!("tensor data {i} ({})", String::from_utf8_lossy(&t.name)),
            ));
        }
        boundaries.sort_by_key(|(at, _)| *at);
        Gguf {
            version,
            kvs,
            tensors,
            n_tensors_written: None,
            n_kv_written: None,
            data: data_start..bytes.len(),
            boundaries,
            header,
            metadata,
            tensor_infos,
        }
    }

    /// The value of `key`, to edit.
    pub fn kv_mut(&mut self, key: &str) -> &mut Value {
        &mut self
            .kvs
            .iter_mut()
            .find(|kv| kv.key == key)
            .unwrap_or_else(|| panic!("no metadata key {key}"))
            .value
    }

    /// Sets `key` to `value`, adding it when absent.
    pub fn set(&mut self, key: &str, value: Value) {
        match self.kvs.iter_mut().find(|kv| kv.key == key) {
            Some(kv) => kv.value = value,
            None => self.kvs.push(Kv {
                key: key.into(),
                value,
            }),
        }
    }

    pub fn remove(&mut self, key: &str) {
        self.kvs.retain(|kv| kv.key != key);
    }

    /// Writes the file: header, metadata, tensor infos, padding, then the original data.
    pub fn write(&self, original: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(original.len() + 4096);
        out.extend_from_slice(b"GGUF");
        out.extend_from_slice(&self.version.to_le_bytes());
        let n_tensors = self.n_tensors_written.unwrap_or(self.tensors.len() as u64);
        out.extend_from_slice(&n_tensors.to_le_bytes());
        let n_kv = self.n_kv_written.unwrap_or(self.kvs.len() as u64);
        out.extend_from_slice(&n_kv.to_le_bytes());
        for kv in &self.kvs {
            write_string(&mut out, kv.key.as_bytes());
            out.extend_from_slice(&kv.value.kind().to_le_bytes());
            write_value(&mut out, &kv.value);
        }
        for t in &self.tensors {
            write_string(&mut out, &t.name);
            out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&t.kind.to_le_bytes());
            out.extend_from_slice(&t.offset.to_le_bytes());
        }
        // Pad with the original alignment (an edited `general.alignment` must not move the data).
        out.resize(out.len().next_multiple_of(32), 0);
        out.extend_from_slice(&original[self.data.clone()]);
        out
    }
}

fn write_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s);
}

fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Scalar { bytes, .. } => out.extend_from_slice(bytes),
        Value::Str(s) => write_string(out, s),
        Value::Array { kind, items } => {
            out.extend_from_slice(&kind.to_le_bytes());
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for item in items {
                write_value(out, item);
            }
        }
    }
}

/// The data alignment the metadata asks for (32 by default).
fn alignment(kvs: &[Kv]) -> usize {
    kvs.iter()
        .find(|kv| kv.key == "general.alignment")
        .and_then(|kv| match &kv.value {
            Value::Scalar { bytes, .. } if bytes.len() == 4 => {
                Some(u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize)
            }
            _ => None,
        })
        .unwrap_or(32)
}
