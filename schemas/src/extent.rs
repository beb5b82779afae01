//! The extent of one MessagePack value: how many bytes it takes, found by walking its markers
//! without decoding or allocating. The codec uses it to refuse bytes after a message's map.

/// The length of the first MessagePack value in `bytes`, or `None` when the bytes end inside it
/// or hold the never-used marker `0xc1`.
pub(crate) fn value_len(bytes: &[u8]) -> Option<usize> {
    let mut pos = 0usize;
    // Values still to walk: the first one, then the items of every array and map met.
    let mut pending: u64 = 1;
    while pending > 0 {
        pending -= 1;
        let marker = *bytes.get(pos)?;
        pos += 1;
        // (bytes of a length or count that follow the marker, bytes of payload, items)
        let (payload, items): (usize, u64) = match marker {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0),
            0x80..=0x8f => (0, 2 * u64::from(marker & 0x0f)),
            0x90..=0x9f => (0, u64::from(marker & 0x0f)),
            0xa0..=0xbf => (usize::from(marker & 0x1f), 0),
            0xc4 | 0xd9 => (read_len(bytes, &mut pos, 1)?, 0),
            0xc5 | 0xda => (read_len(bytes, &mut pos, 2)?, 0),
            0xc6 | 0xdb => (read_len(bytes, &mut pos, 4)?, 0),
            // ext 8/16/32: a length, then a type byte and the data.
            0xc7 => (read_len(bytes, &mut pos, 1)? + 1, 0),
            0xc8 => (read_len(bytes, &mut pos, 2)? + 1, 0),
            0xc9 => (read_len(bytes, &mut pos, 4)? + 1, 0),
            0xca => (4, 0),
            0xcb => (8, 0),
            0xcc | 0xd0 => (1, 0),
            0xcd | 0xd1 => (2, 0),
            0xce | 0xd2 => (4, 0),
            0xcf | 0xd3 => (8, 0),
            // fixext 1/2/4/8/16: a type byte and the data.
            0xd4 => (2, 0),
            0xd5 => (3, 0),
            0xd6 => (5, 0),
            0xd7 => (9, 0),
            0xd8 => (17, 0),
            0xdc => (0, read_len(bytes, &mut pos, 2)? as u64),
            0xdd => (0, read_len(bytes, &mut pos, 4)? as u64),
            0xde => (0, 2 * read_len(bytes, &mut pos, 2)? as u64),
            0xdf => (0, 2 * read_len(bytes, &mut pos, 4)? as u64),
            0xc1 => return None,
        };
        pos = pos.checked_add(payload)?;
        if pos > bytes.len() {
            return None;
        }
        pending = pending.checked_add(items)?;
        // Every value takes at least one byte: a count beyond the bytes left is cut short.
        if pending > (bytes.len() - pos) as u64 {
            return None;
        }
    }
    Some(pos)
}

/// Reads a big-endian length of `width` bytes at `pos`, and moves past it.
fn read_len(bytes: &[u8], pos: &mut usize, width: usize) -> Option<usize> {
    let end = pos.checked_add(width)?;
    let field = bytes.get(*pos..end)?;
    *pos = end;
    let len = field.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    usize::try_from(len).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use rmpv::Value;

    use super::value_len;

    fn encoded(v: &Value) -> Vec<u8> {
        let mut buf = Vec::new();
        rmpv::encode::write_value(&mut buf, v).unwrap();
        buf
    }

    fn samples() -> Vec<Value> {
        let long = |n: usize| "x".repeat(n);
        vec![
            Value::Nil,
            true.into(),
            5.into(),
            (-3).into(),
            200u64.into(),
            70_000u64.into(),
            5_000_000_000u64.into(),
            (-200i64).into(),
            (-70_000i64).into(),
            (-5_000_000_000i64).into(),
            Value::F32(1.5),
            Value::F64(2.5),
            long(3).into(),
            long(40).into(),
            long(300).into(),
            long(70_000).into(),
            Value::Binary(vec![7; 16]),
            Value::Binary(vec![7; 300]),
            Value::Binary(vec![7; 70_000]),
            Value::Ext(1, vec![1]),
            Value::Ext(1, vec![1; 2]),
            Value::Ext(1, vec![1; 4]),
            Value::Ext(1, vec![1; 8]),
            Value::Ext(1, vec![1; 16]),
            Value::Ext(1, vec![1; 3]),
            Value::Ext(1, vec![1; 300]),
            Value::Ext(1, vec![1; 70_000]),
            Value::Array((0..20).map(Value::from).collect()),
            Value::Array((0..70_000).map(Value::from).collect()),
            Value::Map(
                (0..20)
                    .map(|i| (Value::from(format!("k{i}")), Value::from(i)))
                    .collect(),
            ),
            Value::Map((0..70_000).map(|i| (Value::from(i), Value::Nil)).collect()),
        ]
    }

    #[test]
    fn every_kind_of_value_is_measured_exactly() {
        for v in samples() {
            let bytes = encoded(&v);
            assert_eq!(value_len(&bytes), Some(bytes.len()), "{v:.40}");
        }
    }

    #[test]
    fn nested_values_are_measured_and_what_follows_is_left_out() {
        let nested = Value::Map(vec![
            ("a".into(), Value::Array(samples())),
            ("b".into(), Value::Map(vec![("c".into(), Value::Nil)])),
        ]);
        let mut bytes = encoded(&nested);
        let len = bytes.len();
        bytes.extend_from_slice(&[0xc0, 0x01]);
        assert_eq!(value_len(&bytes), Some(len));
    }

    #[test]
    fn values_cut_short_have_no_length() {
        for v in samples() {
            let bytes = encoded(&v);
            for cut in [0, bytes.len() / 2, bytes.len() - 1] {
                if cut < bytes.len() {
                    assert_eq!(value_len(&bytes[..cut]), None, "{v:.40} cut at {cut}");
                }
            }
        }
        assert_eq!(value_len(&[0xc1]), None, "the never-used marker");
        assert_eq!(
            value_len(&[0xdf, 0xff, 0xff, 0xff, 0xff]),
            None,
            "a map that claims more items than there are bytes"
        );
    }
}
