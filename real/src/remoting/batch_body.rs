//! The body of a batch send (reference D; `MessageDecoder.encodeMessages`, read by the
//! broker's `MessageExtBatchEncoder`): per message, TOTALSIZE i32, MAGICCODE i32,
//! BODYCRC i32, FLAG i32, body length i32 and body, properties length i16 and the
//! properties, big-endian, one message after another.
//!
//! Clients write MAGICCODE and BODYCRC as 0 (the broker computes the CRC when it
//! stores); we write the same and read past them. Every length is checked against the
//! bytes present before anything is taken: TOTALSIZE must be exactly what the body and
//! properties lengths add up to (RocketMQ's broker trusts the inner lengths and skips
//! TOTALSIZE; a mismatch means the encoder and we disagree, and storing a guess would
//! be worse than refusing), and properties must be UTF-8 as the header's are.

use rmq_model::protocol::{batch_body_len, BatchMessage, BATCH_MESSAGE_OVERHEAD_BYTES};

/// The body of `messages` in the compact format, or why it cannot be written.
pub(super) fn encode(messages: &[BatchMessage]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(batch_body_len(messages));
    for (i, m) in messages.iter().enumerate() {
        let properties_len = i16::try_from(m.properties.len()).map_err(|_| {
            format!(
                "message {i}: properties of {} bytes exceed {}",
                m.properties.len(),
                i16::MAX
            )
        })?;
        let total = i32::try_from(BATCH_MESSAGE_OVERHEAD_BYTES + m.body.len() + m.properties.len())
            .map_err(|_| format!("message {i}: body of {} bytes too large", m.body.len()))?;
        out.extend_from_slice(&total.to_be_bytes());
        out.extend_from_slice(&0i32.to_be_bytes()); // MAGICCODE
        out.extend_from_slice(&0i32.to_be_bytes()); // BODYCRC
        out.extend_from_slice(&m.flag.to_be_bytes());
        out.extend_from_slice(&(m.body.len() as i32).to_be_bytes());
        out.extend_from_slice(&m.body);
        out.extend_from_slice(&properties_len.to_be_bytes());
        out.extend_from_slice(m.properties.as_bytes());
    }
    Ok(out)
}

/// The messages of a batch body, or what is wrong with it (which message, which field).
/// Bounded by the body: at most one message per 22 bytes of it, and no allocation
/// larger than the bytes present (the frame's own limit bounds the body).
pub(super) fn decode(mut body: &[u8]) -> Result<Vec<BatchMessage>, String> {
    let mut messages = Vec::new();
    while !body.is_empty() {
        let i = messages.len();
        let mut r = Reader { bytes: body, i };
        let total = r.i32("TOTALSIZE")?;
        let total = usize::try_from(total)
            .ok()
            .filter(|&t| t >= BATCH_MESSAGE_OVERHEAD_BYTES && t <= body.len())
            .ok_or_else(|| {
                format!(
                    "message {i}: TOTALSIZE {total} is not in [{BATCH_MESSAGE_OVERHEAD_BYTES}, {}], \
                     the bytes left",
                    body.len()
                )
            })?;
        let mut r = Reader {
            bytes: &body[4..total],
            i,
        };
        r.i32("MAGICCODE")?;
        r.i32("BODYCRC")?;
        let flag = r.i32("FLAG")?;
        let body_len = r.i32("body length")?;
        let message_body = r.take("body", body_len.into())?.to_vec();
        let properties_len = r.i16("properties length")?;
        let properties = r.take("properties", properties_len.into())?;
        let properties = std::str::from_utf8(properties)
            .map_err(|e| format!("message {i}: properties are not UTF-8: {e}"))?
            .to_string();
        if !r.bytes.is_empty() {
            return Err(format!(
                "message {i}: TOTALSIZE {total} leaves {} bytes past the properties",
                r.bytes.len()
            ));
        }
        messages.push(BatchMessage {
            flag,
            properties,
            body: message_body,
        });
        body = &body[total..];
    }
    Ok(messages)
}

/// Big-endian reads from one message's bytes; every error names the message and field.
struct Reader<'a> {
    bytes: &'a [u8],
    i: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, field: &str, len: i64) -> Result<&'a [u8], String> {
        let n = usize::try_from(len)
            .ok()
            .filter(|&n| n <= self.bytes.len())
            .ok_or_else(|| {
                format!(
                    "message {}: {field} of {len} bytes, but {} are left in the message",
                    self.i,
                    self.bytes.len()
                )
            })?;
        let (taken, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(taken)
    }

    fn i32(&mut self, field: &str) -> Result<i32, String> {
        let b = self.take(field, 4)?;
        Ok(i32::from_be_bytes(b.try_into().expect("took 4")))
    }

    fn i16(&mut self, field: &str) -> Result<i16, String> {
        let b = self.take(field, 2)?;
        Ok(i16::from_be_bytes(b.try_into().expect("took 2")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(flag: i32, properties: &str, body: &[u8]) -> BatchMessage {
        BatchMessage {
            flag,
            properties: properties.into(),
            body: body.to_vec(),
        }
    }

    #[test]
    fn round_trips_in_rocketmq_layout() {
        let messages = vec![
            message(7, "UNIQ_KEY\u{1}A\u{2}KEYS\u{1}k0", b"body-0"),
            message(0, "", b""),
        ];
        let body = encode(&messages).unwrap();
        // TOTALSIZE 22 + 6 + 18, MAGICCODE 0, BODYCRC 0, FLAG 7, body length 6.
        assert_eq!(&body[..4], &46i32.to_be_bytes());
        assert_eq!(&body[4..12], &[0; 8]);
        assert_eq!(&body[12..16], &7i32.to_be_bytes());
        assert_eq!(&body[16..20], &6i32.to_be_bytes());
        assert_eq!(&body[20..26], b"body-0");
        assert_eq!(&body[26..28], &18i16.to_be_bytes());
        assert_eq!(body.len(), 46 + 22);
        assert_eq!(decode(&body).unwrap(), messages);
        assert_eq!(decode(&[]).unwrap(), vec![]);
    }

    #[test]
    fn refuses_what_does_not_add_up() {
        let body = encode(&[message(1, "a\u{1}b", b"xyz")]).unwrap();
        for cut in 1..body.len() {
            let e = decode(&body[..cut]).unwrap_err();
            assert!(e.starts_with("message 0: "), "{cut}: {e}");
        }
        let mut longer = body.clone();
        longer[..4].copy_from_slice(&(body.len() as i32 + 1).to_be_bytes());
        longer.push(0);
        let e = decode(&longer).unwrap_err();
        assert!(e.contains("leaves 1 bytes past the properties"), "{e}");
        let mut negative = body.clone();
        negative[16..20].copy_from_slice(&(-1i32).to_be_bytes());
        let e = decode(&negative).unwrap_err();
        assert!(e.contains("body of -1 bytes"), "{e}");
        let mut huge = body.clone();
        huge[..4].copy_from_slice(&i32::MAX.to_be_bytes());
        let e = decode(&huge).unwrap_err();
        assert!(e.contains("TOTALSIZE 2147483647"), "{e}");
        let mut not_utf8 = body.clone();
        let at = not_utf8.len() - 1;
        not_utf8[at] = 0xFF;
        let e = decode(&not_utf8).unwrap_err();
        assert!(e.contains("not UTF-8"), "{e}");
        // A good message followed by a torn one names the second.
        let mut two = body.clone();
        two.extend_from_slice(&body[..10]);
        assert!(decode(&two).unwrap_err().starts_with("message 1: "));
    }

    #[test]
    fn refuses_to_encode_properties_past_i16() {
        let long = "p".repeat(i16::MAX as usize + 1);
        let e = encode(&[message(0, &long, b"")]).unwrap_err();
        assert!(e.contains("exceed 32767"), "{e}");
    }
}
