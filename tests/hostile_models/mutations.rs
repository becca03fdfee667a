//! The hostile files, made from a real model: truncated at structure boundaries, bytes flipped
//! in the header, metadata and tensor infos, absurd counts, lengths, dimensions and types,
//! tensor offsets past the end or overlapping, and metadata that contradicts the tensors.

use super::gguf_file::{self, Gguf, Value};

/// How to make one hostile file from the original.
pub enum Edit {
    /// The first `n` bytes.
    Truncate(usize),
    /// The original with these bytes overwritten in place.
    Patch(Vec<(usize, Vec<u8>)>),
    /// The original with the byte at `.0` XORed with `.1`.
    Flip(usize, u8),
    /// The original's structure, edited and written out again.
    Rewrite(Box<dyn Fn(&mut Gguf)>),
}

pub struct Mutant {
    pub name: String,
    pub edit: Edit,
}

impl Mutant {
    fn new(name: impl Into<String>, edit: Edit) -> Self {
        Mutant {
            name: name.into(),
            edit,
        }
    }

    fn rewrite(name: impl Into<String>, f: impl Fn(&mut Gguf) + 'static) -> Self {
        Self::new(name, Edit::Rewrite(Box::new(f)))
    }

    /// The file's bytes.
    pub fn bytes(&self, original: &[u8], parsed: &Gguf) -> Vec<u8> {
        match &self.edit {
            Edit::Truncate(n) => original[..*n].to_vec(),
            Edit::Patch(patches) => {
                let mut bytes = original.to_vec();
                for (at, new) in patches {
                    bytes[*at..*at + new.len()].copy_from_slice(new);
                }
                bytes
            }
            Edit::Flip(at, mask) => {
                let mut bytes = original.to_vec();
                bytes[*at] ^= mask;
                bytes
            }
            Edit::Rewrite(f) => {
                let mut g = parsed.clone();
                f(&mut g);
                g.write(original)
            }
        }
    }
}

/// A small deterministic generator (xorshift64*), so a failing case can be run again by name.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const ARCH: &str = "llama";

fn key(name: &str) -> String {
    format!("{ARCH}.{name}")
}

/// Values no model has: zero, the type's largest, and past llama.cpp's own limits.
const ABSURD_U32: [u32; 4] = [0, 1_000, 0x7FFF_FFFF, u32::MAX];

/// Every structural mutant (deterministic); the random byte flips come from [`byte_flips`].
pub fn structural(g: &Gguf, every_boundary: bool) -> Vec<Mutant> {
    let mut out = Vec::new();

    // Truncations: inside the header, after each metadata pair's parts, in the tensor infos,
    // at the data and inside it. The short corpus takes a spread of them.
    let boundaries: Vec<&(usize, String)> = g.boundaries.iter().filter(|(at, _)| *at > 0).collect();
    let step = if every_boundary {
        1
    } else {
        (boundaries.len() / 24).max(1)
    };
    let header_and_metadata = boundaries.iter().filter(|(at, _)| *at <= g.metadata.end);
    for (i, (at, what)) in boundaries.iter().enumerate() {
        if i % step == 0 || *at <= g.header.end {
            out.push(Mutant::new(
                format!("truncated at {what}"),
                Edit::Truncate(*at),
            ));
        }
    }
    for (at, what) in header_and_metadata.take(if every_boundary { usize::MAX } else { 8 }) {
        // One byte into the structure: a field cut in half.
        out.push(Mutant::new(
            format!("truncated inside {what}"),
            Edit::Truncate(at + 1),
        ));
    }
    out.push(Mutant::new(
        "truncated by one byte",
        Edit::Truncate(g.data.end - 1),
    ));

    // The header: versions and counts.
    for (version, why) in [
        (0u32, "0"),
        (1, "1"),
        (2, "2"),
        (4, "4"),
        (0x0300_0000, "byte-swapped 3"),
    ] {
        out.push(Mutant::new(
            format!("version {why}"),
            Edit::Patch(vec![(4, version.to_le_bytes().to_vec())]),
        ));
    }
    let n_tensors = g.tensors.len() as u64;
    let n_kv = g.kvs.len() as u64;
    for (what, at, value) in [
        ("tensor count + 1", 8, n_tensors + 1),
        ("tensor count - 1", 8, n_tensors - 1),
        ("tensor count 0", 8, 0),
        ("tensor count 2^62", 8, 1 << 62),
        ("tensor count u64::MAX", 8, u64::MAX),
        ("metadata count + 1", 16, n_kv + 1),
        ("metadata count - 1", 16, n_kv - 1),
        ("metadata count 0", 16, 0),
        ("metadata count 2^62", 16, 1 << 62),
        ("metadata count u64::MAX", 16, u64::MAX),
    ] {
        out.push(Mutant::new(
            what,
            Edit::Patch(vec![(at, value.to_le_bytes().to_vec())]),
        ));
    }

    // Metadata encoding: lengths and type ids.
    let first_key_len = g.header.end;
    for (what, value) in [("2^40", 1u64 << 40), ("u64::MAX", u64::MAX), ("0", 0)] {
        out.push(Mutant::new(
            format!("first key length {what}"),
            Edit::Patch(vec![(first_key_len, value.to_le_bytes().to_vec())]),
        ));
    }
    for (what, kind) in [
        ("13", 13u32),
        ("array of arrays", 9),
        ("u32::MAX", u32::MAX),
    ] {
        out.push(Mutant::rewrite(
            format!("tokens array element type {what}"),
            move |g| {
                if let Value::Array { kind: k, .. } = g.kv_mut("tokenizer.ggml.tokens") {
                    *k = kind;
                }
            },
        ));
    }
    out.push(Mutant::rewrite("duplicate metadata key", |g| {
        let kv = g.kvs[0].clone();
        g.kvs.push(kv);
    }));
    out.push(Mutant::rewrite("empty metadata key", |g| {
        g.kvs[1].key.clear()
    }));

    // The hyperparameters llama.cpp sizes everything by.
    for name in [
        "block_count",
        "embedding_length",
        "feed_forward_length",
        "attention.head_count",
        "attention.head_count_kv",
        "context_length",
        "rope.dimension_count",
        "vocab_size",
    ] {
        for v in ABSURD_U32 {
            out.push(Mutant::rewrite(format!("{name} = {v}"), move |g| {
                g.set(&key(name), Value::u32(v))
            }));
        }
        out.push(Mutant::rewrite(format!("{name} is a string"), move |g| {
            g.set(&key(name), Value::str("thirty"))
        }));
        out.push(Mutant::rewrite(format!("{name} is missing"), move |g| {
            g.remove(&key(name))
        }));
    }
    for (name, v) in [
        ("block_count", 31),
        ("block_count", 29),
        ("attention.head_count", 7),
        ("attention.head_count_kv", 4),
        ("attention.head_count_kv", 18),
        ("embedding_length", 577),
        ("attention.key_length", 0),
        ("attention.key_length", 65),
        ("attention.value_length", 4096),
        ("rope.dimension_count", 63),
    ] {
        out.push(Mutant::rewrite(format!("{name} = {v}"), move |g| {
            g.set(&key(name), Value::u32(v))
        }));
    }
    for (what, items) in [
        ("29 entries", 29usize),
        ("1 entry per 1000 layers", 1000),
        ("no entries", 0),
    ] {
        out.push(Mutant::rewrite(
            format!("head_count_kv as an array of {what}"),
            move |g| {
                g.set(
                    &key("attention.head_count_kv"),
                    Value::Array {
                        kind: gguf_file::UINT32,
                        items: vec![Value::u32(3); items],
                    },
                )
            },
        ));
    }
    out.push(Mutant::rewrite(
        "head_count_kv as an array of strings",
        |g| {
            g.set(
                &key("attention.head_count_kv"),
                Value::Array {
                    kind: gguf_file::STRING,
                    items: vec![Value::str("3"); 30],
                },
            )
        },
    ));
    for (name, v) in [
        ("attention.layer_norm_rms_epsilon", f32::NAN),
        ("attention.layer_norm_rms_epsilon", 0.0),
        ("attention.layer_norm_rms_epsilon", -1.0),
        ("rope.freq_base", 0.0),
        ("rope.freq_base", f32::INFINITY),
        ("rope.freq_base", f32::NAN),
    ] {
        out.push(Mutant::rewrite(format!("{name} = {v}"), move |g| {
            g.set(&key(name), Value::f32(v))
        }));
    }
    out.push(Mutant::rewrite("rms epsilon is a u32", |g| {
        g.set(&key("attention.layer_norm_rms_epsilon"), Value::u32(1))
    }));

    // Architecture and tokenizer.
    for arch in ["", "nonexistent", "gemma3", "bert", "mamba", "rwkv6", "t5"] {
        out.push(Mutant::rewrite(
            format!("architecture `{arch}`"),
            move |g| g.set("general.architecture", Value::str(arch)),
        ));
    }
    out.push(Mutant::rewrite("architecture is a number", |g| {
        g.set("general.architecture", Value::u32(7))
    }));
    for model in [
        "",
        "nonexistent",
        "llama",
        "bert",
        "t5",
        "rwkv",
        "none",
        "ugm",
        "plamo2",
    ] {
        out.push(Mutant::rewrite(
            format!("tokenizer model `{model}`"),
            move |g| g.set("tokenizer.ggml.model", Value::str(model)),
        ));
    }
    for model in ["t5", "bert", "rwkv"] {
        // These tokenizers have no default BOS: without the key, the model has none.
        out.push(Mutant::rewrite(
            format!("tokenizer model `{model}` without a bos id"),
            move |g| {
                g.set("tokenizer.ggml.model", Value::str(model));
                g.remove("tokenizer.ggml.bos_token_id");
                g.remove("tokenizer.ggml.eos_token_id");
            },
        ));
    }
    out.push(Mutant::rewrite("tokenizer pre `nonexistent`", |g| {
        g.set("tokenizer.ggml.pre", Value::str("nonexistent"))
    }));
    out.push(Mutant::rewrite("tokenizer model missing", |g| {
        g.remove("tokenizer.ggml.model")
    }));
    out.push(Mutant::rewrite("tokens missing", |g| {
        g.remove("tokenizer.ggml.tokens")
    }));
    for (what, keep) in [
        ("no tokens", 0usize),
        ("one token", 1),
        ("11 tokens", 11),
        ("half the tokens", 24576),
    ] {
        out.push(Mutant::rewrite(what, move |g| {
            for list in ["tokenizer.ggml.tokens", "tokenizer.ggml.token_type"] {
                if let Value::Array { items, .. } = g.kv_mut(list) {
                    items.truncate(keep);
                }
            }
        }));
    }
    out.push(Mutant::rewrite("more tokens than embedding rows", |g| {
        for list in ["tokenizer.ggml.tokens", "tokenizer.ggml.token_type"] {
            if let Value::Array { items, .. } = g.kv_mut(list) {
                let extra: Vec<Value> = (0..64)
                    .map(|i| {
                        if list.ends_with("tokens") {
                            Value::str(&format!("<extra_{i}>"))
                        } else {
                            Value::i32(1)
                        }
                    })
                    .collect();
                items.extend(extra);
            }
        }
    }));
    for (what, a, b) in [
        ("first two", 0usize, 1usize),
        ("two ordinary", 300, 301),
        ("last two", 49150, 49151),
    ] {
        out.push(Mutant::rewrite(
            format!("duplicate tokens ({what})"),
            move |g| {
                if let Value::Array { items, .. } = g.kv_mut("tokenizer.ggml.tokens") {
                    items[b] = items[a].clone();
                }
            },
        ));
    }
    out.push(Mutant::rewrite("an empty token and its stand-in", |g| {
        if let Value::Array { items, .. } = g.kv_mut("tokenizer.ggml.tokens") {
            items[500] = Value::str("");
            items[501] = Value::str("[EMPTY_500]");
        }
    }));
    out.push(Mutant::rewrite("token type list shorter", |g| {
        if let Value::Array { items, .. } = g.kv_mut("tokenizer.ggml.token_type") {
            items.truncate(100);
        }
    }));
    out.push(Mutant::rewrite("token types 99 and -1", |g| {
        if let Value::Array { items, .. } = g.kv_mut("tokenizer.ggml.token_type") {
            items[0] = Value::i32(99);
            items[1] = Value::i32(-1);
        }
    }));
    out.push(Mutant::rewrite("token types are strings", |g| {
        g.set(
            "tokenizer.ggml.token_type",
            Value::Array {
                kind: gguf_file::STRING,
                items: vec![Value::str("x"); 49152],
            },
        )
    }));
    out.push(Mutant::rewrite("scores shorter than tokens", |g| {
        g.set(
            "tokenizer.ggml.scores",
            Value::Array {
                kind: gguf_file::FLOAT32,
                items: vec![Value::f32(0.0); 10],
            },
        )
    }));
    out.push(Mutant::rewrite("merges are garbage", |g| {
        if let Value::Array { items, .. } = g.kv_mut("tokenizer.ggml.merges") {
            for (i, item) in items.iter_mut().enumerate().take(2000) {
                *item = match i % 4 {
                    0 => Value::str(""),
                    1 => Value::str(" "),
                    2 => Value::str("no-space"),
                    _ => Value::Str(vec![0xFF, b' ', 0xC3]),
                };
            }
        }
    }));
    out.push(Mutant::rewrite("merges are numbers", |g| {
        g.set(
            "tokenizer.ggml.merges",
            Value::Array {
                kind: gguf_file::UINT32,
                items: vec![Value::u32(1); 100],
            },
        )
    }));
    out.push(Mutant::rewrite("merges missing", |g| {
        g.remove("tokenizer.ggml.merges")
    }));
    for id in ["bos", "eos", "unknown", "padding"] {
        for v in [49152u32, 1 << 30, u32::MAX] {
            out.push(Mutant::rewrite(format!("{id} token id {v}"), move |g| {
                g.set(&format!("tokenizer.ggml.{id}_token_id"), Value::u32(v))
            }));
        }
    }
    out.push(Mutant::rewrite("bos token id is a string", |g| {
        g.set("tokenizer.ggml.bos_token_id", Value::str("<s>"))
    }));
    out.push(Mutant::rewrite("add bos with an out-of-range bos", |g| {
        g.set(
            "tokenizer.ggml.add_bos_token",
            Value::Scalar {
                kind: gguf_file::BOOL,
                bytes: vec![1],
            },
        );
        g.set("tokenizer.ggml.bos_token_id", Value::u32(u32::MAX));
    }));
    out.push(Mutant::rewrite("a bool of value 7", |g| {
        g.set(
            "tokenizer.ggml.add_bos_token",
            Value::Scalar {
                kind: gguf_file::BOOL,
                bytes: vec![7],
            },
        );
    }));
    for (what, template) in [
        ("an unclosed tag", "{% for m in messages %}{{ m.content }"),
        ("an unknown filter", "{{ messages | nonexistent_filter }}"),
        (
            "a huge loop",
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
        ),
        (
            "deep recursion",
            "{% macro r(n) %}{{ r(n + 1) }}{% endmacro %}{{ r(0) }}",
        ),
        ("an empty template", ""),
    ] {
        out.push(Mutant::rewrite(
            format!("chat template with {what}"),
            move |g| g.set("tokenizer.chat_template", Value::str(template)),
        ));
    }
    out.push(Mutant::rewrite("chat template is a number", |g| {
        g.set("tokenizer.chat_template", Value::u32(1))
    }));
    for v in [0u32, 3, 1 << 31] {
        out.push(Mutant::rewrite(format!("alignment {v}"), move |g| {
            g.set("general.alignment", Value::u32(v))
        }));
    }

    // Tensor infos: dimensions, types, offsets, names.
    let t0 = &g.tensors[0];
    let t1 = &g.tensors[1];
    let last = g.tensors.last().unwrap();
    let dims_at = t0.at_n_dims + 4;
    for (what, v) in [
        ("0", 0u64),
        ("2^62", 1 << 62),
        ("i64 -1", u64::MAX),
        ("1", 1),
    ] {
        out.push(Mutant::new(
            format!(
                "first dimension of {} = {what}",
                String::from_utf8_lossy(&t0.name)
            ),
            Edit::Patch(vec![(dims_at, v.to_le_bytes().to_vec())]),
        ));
    }
    for (what, v) in [("5", 5u32), ("0", 0), ("u32::MAX", u32::MAX)] {
        out.push(Mutant::new(
            format!("tensor 0 has {what} dimensions"),
            Edit::Patch(vec![(t0.at_n_dims, v.to_le_bytes().to_vec())]),
        ));
    }
    out.push(Mutant::rewrite(
        "a tensor's dimensions multiply past i64",
        |g| {
            g.tensors[5].dims = vec![1 << 40, 1 << 40];
        },
    ));
    out.push(Mutant::rewrite("token_embd with one row fewer", |g| {
        g.tensors[0].dims[1] -= 1;
    }));
    out.push(Mutant::rewrite("a norm tensor of 4 dimensions", |g| {
        g.tensors[1].dims = vec![576, 1, 1, 1];
    }));
    out.push(Mutant::rewrite("token_embd transposed", |g| {
        g.tensors[0].dims.reverse();
    }));
    for (what, kind) in [
        ("39 (past the last type)", 39u32),
        ("4 (removed Q4_2)", 4),
        ("u32::MAX", u32::MAX),
        ("0 (F32, another size)", 0),
        ("2 (Q4_0, same block count, another size)", 2),
        ("24 (I8)", 24),
    ] {
        out.push(Mutant::new(
            format!("tensor 1 type {what}"),
            Edit::Patch(vec![(t1.at_type, kind.to_le_bytes().to_vec())]),
        ));
    }
    let end_of_data = (g.data.end - g.data.start) as u64;
    for (what, v) in [
        ("past the end", end_of_data),
        ("u64::MAX", u64::MAX),
        ("overlapping tensor 0", 0u64),
        ("unaligned", t1.offset + 1),
    ] {
        out.push(Mutant::new(
            format!("tensor 1 offset {what}"),
            Edit::Patch(vec![(t1.at_offset, v.to_le_bytes().to_vec())]),
        ));
    }
    out.push(Mutant::new(
        "last tensor past the end",
        Edit::Patch(vec![(last.at_offset, end_of_data.to_le_bytes().to_vec())]),
    ));
    out.push(Mutant::rewrite("two tensors swap places", |g| {
        let (a, b) = (g.tensors[3].offset, g.tensors[4].offset);
        g.tensors[3].offset = b;
        g.tensors[4].offset = a;
    }));
    out.push(Mutant::rewrite("duplicate tensor name", |g| {
        g.tensors[2].name = g.tensors[1].name.clone();
    }));
    out.push(Mutant::rewrite("tensor name of 64 bytes", |g| {
        g.tensors[1].name = vec![b'x'; 64];
    }));
    out.push(Mutant::rewrite("unknown tensor name", |g| {
        g.tensors[1].name = b"blk.0.not_a_tensor.weight".to_vec();
    }));
    out.push(Mutant::rewrite("tensor of layer 999", |g| {
        g.tensors[1].name = b"blk.999.attn_norm.weight".to_vec();
    }));
    out.push(Mutant::rewrite("token_embd missing", |g| {
        g.tensors.remove(0);
        g.n_tensors_written = None;
    }));
    out
}

/// `count` single-byte flips at random places in the header, metadata and tensor infos.
pub fn byte_flips(g: &Gguf, count: usize, seed: u64) -> Vec<Mutant> {
    let mut rng = Rng::new(seed);
    let end = g.tensor_infos.end;
    (0..count)
        .map(|_| {
            // Half land in the small, dense parts (header, hyperparameters, tensor infos) rather
            // than in the long token lists, where most flips only change a token's text.
            let at = match rng.below(3) {
                0 => rng.below(g.metadata.start + 2048),
                1 => g.tensor_infos.start + rng.below(g.tensor_infos.end - g.tensor_infos.start),
                _ => rng.below(end),
            };
            let flip = 1u8 << rng.below(8);
            let what = g
                .boundaries
                .iter()
                .take_while(|(b, _)| *b <= at)
                .last()
                .map(|(_, w)| w.as_str())
                .unwrap_or("magic");
            Mutant {
                name: format!(
                    "bit {} of byte {at} flipped ({what})",
                    flip.trailing_zeros()
                ),
                edit: Edit::Flip(at, flip),
            }
        })
        .collect()
}
