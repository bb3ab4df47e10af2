//! Deterministic mutations of request bodies for fuzz passes: bit flips, truncation, spliced
//! ranges, non-UTF-8 bytes, and JSON-aware changes (a node replaced by another type, a huge or
//! unrepresentable number, a long or NUL-carrying string, deep nesting, wrapped or missing keys).

use serde_json::Value;

/// splitmix64: small, deterministic, good enough to pick mutations.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Raw JSON texts put in place of a node: other types, numbers no integer type holds, strings a
/// database may refuse, nesting deeper than parsers allow.
fn odd_values() -> Vec<String> {
    let deep = |open: &str, close: &str, depth: usize| {
        format!("{}1{}", open.repeat(depth), close.repeat(depth))
    };
    vec![
        "null".into(),
        "true".into(),
        "0".into(),
        "-1".into(),
        "1.5".into(),
        "1e400".into(),
        "-1e400".into(),
        "18446744073709551616".into(),
        "-9223372036854775809".into(),
        "123456789012345678901234567890123456789".into(),
        "[]".into(),
        "{}".into(),
        "\"\"".into(),
        "\"\\u0000\"".into(),
        "\"a\\u0000b\"".into(),
        "\"\\ud800\"".into(),
        "\"\\udfff\\ud800\"".into(),
        "\"\u{202e}\u{1f600}\u{fffd}\"".into(),
        format!("\"{}\"", "x".repeat(70_000)),
        "\"@someone:example.org\"".into(),
        "\"!room:example.org\"".into(),
        "\"$event\"".into(),
        "\"m.room.member\"".into(),
        "\"public\"".into(),
        "[{\"user_id\": \"@a:b.c\", \"role\": \"host\"}]".into(),
        deep("[", "]", 40),
        deep("[", "]", 3000),
        deep("{\"a\":", "}", 3000),
    ]
}

/// One mutation of `base` (a JSON body); returns the new body and what was done.
pub fn mutate(rng: &mut Rng, base: &[u8]) -> (Vec<u8>, String) {
    let mut body = base.to_vec();
    match rng.below(10) {
        0 => {
            let flips = 1 + rng.below(8);
            for _ in 0..flips {
                let at = rng.below(body.len());
                body[at] ^= 1 << rng.below(8);
            }
            (body, format!("{flips} bit flips"))
        }
        1 => {
            let at = rng.below(body.len());
            body.truncate(at);
            (body, format!("truncated at {at}"))
        }
        2 => {
            let (start, end) = range(rng, body.len());
            if rng.below(2) == 0 {
                body.drain(start..end);
                (body, format!("bytes {start}..{end} removed"))
            } else {
                let copy = body[start..end].to_vec();
                let at = rng.below(body.len());
                body.splice(at..at, copy);
                (body, format!("bytes {start}..{end} repeated at {at}"))
            }
        }
        3 => {
            let bad: &[&[u8]] = &[
                b"\xff",
                b"\xfe\xff",
                b"\xc3\x28",
                b"\xed\xa0\x80",
                b"\xf4\x90\x80\x80",
                b"\x80",
                b"\x00",
            ];
            let bytes = rng.pick(bad).to_vec();
            // Inside a string or between tokens, whatever the position gives.
            let at = rng.below(body.len());
            body.splice(at..at, bytes.iter().copied());
            (body, format!("non-UTF-8 {bytes:?} at {at}"))
        }
        4 => {
            let len = rng.below(256);
            let random: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            (random, format!("{len} random bytes"))
        }
        _ => json_mutation(rng, base),
    }
}

fn range(rng: &mut Rng, len: usize) -> (usize, usize) {
    let a = rng.below(len);
    let b = rng.below(len);
    (a.min(b), a.max(b) + 1)
}

/// Changes one node of the parsed body (falls back to a bit flip when `base` is not JSON).
fn json_mutation(rng: &mut Rng, base: &[u8]) -> (Vec<u8>, String) {
    let Ok(mut value) = serde_json::from_slice::<Value>(base) else {
        let mut body = base.to_vec();
        let at = rng.below(body.len());
        body[at] ^= 1;
        return (body, "bit flip".into());
    };
    let mut pointers = Vec::new();
    collect_pointers(&value, String::new(), &mut pointers);
    let pointer = rng.pick(&pointers).clone();
    const HOLE: &str = "\u{1}fuzz-hole\u{1}";
    let what = match rng.below(5) {
        0 | 1 => {
            let odd = rng.pick(&odd_values()).clone();
            *value.pointer_mut(&pointer).expect("a collected pointer") = Value::from(HOLE);
            let text = value
                .to_string()
                .replace(&Value::from(HOLE).to_string(), &odd);
            let shown: String = odd.chars().take(40).collect();
            return (text.into_bytes(), format!("{pointer:?} = {shown}"));
        }
        2 => {
            let node = value.pointer_mut(&pointer).expect("a collected pointer");
            let inner = node.take();
            *node = if rng.below(2) == 0 {
                Value::Array(vec![inner])
            } else {
                serde_json::json!({"wrapped": inner})
            };
            format!("{pointer:?} wrapped")
        }
        3 => {
            let parent = pointer.rsplit_once('/').map_or("", |(parent, _)| parent);
            match value.pointer_mut(parent) {
                Some(Value::Object(map)) if !map.is_empty() => {
                    let keys: Vec<String> = map.keys().cloned().collect();
                    let key = rng.pick(&keys).clone();
                    map.remove(&key);
                    format!("{parent:?}/{key} removed")
                }
                Some(Value::Array(items)) if !items.is_empty() => {
                    let at = rng.below(items.len());
                    items.remove(at);
                    format!("{parent:?}/{at} removed")
                }
                _ => {
                    value = Value::Null;
                    "body replaced by null".into()
                }
            }
        }
        _ => {
            match value.pointer_mut(&pointer) {
                Some(Value::Object(map)) => {
                    map.insert("unexpected".into(), Value::from(rng.next_u64()));
                }
                Some(Value::Array(items)) => {
                    let copy = items.first().cloned().unwrap_or(Value::Null);
                    items.push(copy);
                }
                Some(node) => *node = Value::Array(vec![node.take(), Value::Null]),
                None => {}
            }
            format!("{pointer:?} grown")
        }
    };
    (value.to_string().into_bytes(), what)
}

fn collect_pointers(value: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let key = key.replace('~', "~0").replace('/', "~1");
                collect_pointers(child, format!("{at}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                collect_pointers(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}
