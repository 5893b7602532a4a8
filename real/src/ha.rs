//! RocketMQ's HA stream (reference A.8): what a slave (`HAClient`) and its master
//! (`HAConnection`) send each other on the master's `haListenPort`. It is not remoting:
//! two fixed frames, big-endian, one kind each way.
//!
//! - slave → master, the report: `[i64 the commit-log offset the slave holds up to]`;
//! - master → slave, the transfer: `[i64 commit-log offset of the body][i32 body size]
//!   [body]`, the body being commit-log bytes as stored; size 0 is a heartbeat.
//!
//! They map one to one onto the model's [`Request::HaReport`] and
//! [`Request::HaTransfer`]. Input is checked as remoting input is: a negative offset or
//! size, or a body larger than the configured maximum, is an error that closes the
//! connection, and nothing is allocated before its size is checked.

use rmq_model::protocol::Request;

/// The slave's report.
pub const REPORT_BYTES: usize = 8;
/// The master's transfer header.
pub const TRANSFER_HEADER_BYTES: usize = 12;

/// Which frames a connection reads: a master's HA connection reads reports, a slave's
/// reads transfers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HaReads {
    Reports,
    Transfers,
}

/// Why an HA stream cannot be read on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HaFrameError {
    NegativeOffset(i64),
    NegativeSize(i32),
    BodyTooLarge { size: u64, max: u64 },
}

impl std::fmt::Display for HaFrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HaFrameError::NegativeOffset(o) => write!(f, "HA frame with negative offset {o}"),
            HaFrameError::NegativeSize(s) => write!(f, "HA transfer with negative size {s}"),
            HaFrameError::BodyTooLarge { size, max } => {
                write!(
                    f,
                    "HA transfer of {size} bytes, more than the {max} allowed"
                )
            }
        }
    }
}

impl std::error::Error for HaFrameError {}

/// Appends the frame of an HA message to `out`; false (nothing appended) for any other
/// request.
pub fn encode_ha(request: &Request, out: &mut Vec<u8>) -> bool {
    match request {
        Request::HaReport { slave_max_offset } => {
            out.extend_from_slice(&offset_to_wire(*slave_max_offset).to_be_bytes());
            true
        }
        Request::HaTransfer {
            master_offset,
            data,
        } => {
            // The model's batches are at most `haTransferBatchSize` (32 KiB).
            let size = i32::try_from(data.len()).expect("an HA batch under 2 GiB");
            out.reserve(TRANSFER_HEADER_BYTES + data.len());
            out.extend_from_slice(&offset_to_wire(*master_offset).to_be_bytes());
            out.extend_from_slice(&size.to_be_bytes());
            out.extend_from_slice(data);
            true
        }
        _ => false,
    }
}

/// Commit-log offsets stay far below 2^63; saturate rather than wrap if one did not.
fn offset_to_wire(offset: u64) -> i64 {
    i64::try_from(offset).unwrap_or(i64::MAX)
}

/// Cuts one frame of kind `reads` from the front of `buf`: the message and the bytes
/// it took, or None while the frame is incomplete.
pub fn decode_ha(
    reads: HaReads,
    buf: &[u8],
    max_body_bytes: usize,
) -> Result<Option<(Request, usize)>, HaFrameError> {
    match reads {
        HaReads::Reports => {
            let Some(head) = buf.first_chunk::<REPORT_BYTES>() else {
                return Ok(None);
            };
            let offset = read_offset(*head)?;
            Ok(Some((
                Request::HaReport {
                    slave_max_offset: offset,
                },
                REPORT_BYTES,
            )))
        }
        HaReads::Transfers => {
            let Some(head) = buf.first_chunk::<TRANSFER_HEADER_BYTES>() else {
                return Ok(None);
            };
            let mut offset_bytes = [0u8; 8];
            offset_bytes.copy_from_slice(&head[..8]);
            let offset = read_offset(offset_bytes)?;
            let size = i32::from_be_bytes([head[8], head[9], head[10], head[11]]);
            let size = usize::try_from(size).map_err(|_| HaFrameError::NegativeSize(size))?;
            if size > max_body_bytes {
                return Err(HaFrameError::BodyTooLarge {
                    size: size as u64,
                    max: max_body_bytes as u64,
                });
            }
            let Some(body) = buf.get(TRANSFER_HEADER_BYTES..TRANSFER_HEADER_BYTES + size) else {
                return Ok(None);
            };
            Ok(Some((
                Request::HaTransfer {
                    master_offset: offset,
                    data: body.to_vec(),
                },
                TRANSFER_HEADER_BYTES + size,
            )))
        }
    }
}

fn read_offset(bytes: [u8; 8]) -> Result<u64, HaFrameError> {
    let offset = i64::from_be_bytes(bytes);
    u64::try_from(offset).map_err(|_| HaFrameError::NegativeOffset(offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(request: &Request) -> Vec<u8> {
        let mut out = Vec::new();
        assert!(encode_ha(request, &mut out));
        out
    }

    #[test]
    fn a_report_is_eight_big_endian_bytes_and_reads_back() {
        let report = Request::HaReport {
            slave_max_offset: 0x0102_0304_0506,
        };
        let bytes = encoded(&report);
        assert_eq!(bytes, [0, 0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(
            decode_ha(HaReads::Reports, &bytes, 64),
            Ok(Some((report, 8)))
        );
        assert_eq!(decode_ha(HaReads::Reports, &bytes[..7], 64), Ok(None));
    }

    #[test]
    fn a_transfer_is_a_twelve_byte_header_and_its_body_and_reads_back_in_pieces() {
        let transfer = Request::HaTransfer {
            master_offset: 4096,
            data: b"records".to_vec(),
        };
        let mut bytes = encoded(&transfer);
        assert_eq!(&bytes[..12], &[0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 7]);
        // Two frames back to back, the second a heartbeat.
        let heartbeat = Request::HaTransfer {
            master_offset: 4103,
            data: Vec::new(),
        };
        bytes.extend(encoded(&heartbeat));
        for cut in 0..19 {
            assert_eq!(decode_ha(HaReads::Transfers, &bytes[..cut], 64), Ok(None));
        }
        let (first, used) = decode_ha(HaReads::Transfers, &bytes, 64).unwrap().unwrap();
        assert_eq!((first, used), (transfer, 19));
        assert_eq!(
            decode_ha(HaReads::Transfers, &bytes[used..], 64),
            Ok(Some((heartbeat, 12)))
        );
        // Other requests are not HA frames.
        assert!(!encode_ha(&Request::GetBrokerClusterInfo, &mut Vec::new()));
    }

    #[test]
    fn negative_or_oversized_fields_are_errors_before_any_allocation() {
        let negative = (-5i64).to_be_bytes();
        assert_eq!(
            decode_ha(HaReads::Reports, &negative, 64),
            Err(HaFrameError::NegativeOffset(-5))
        );
        let mut header = 0i64.to_be_bytes().to_vec();
        header.extend((-1i32).to_be_bytes());
        assert_eq!(
            decode_ha(HaReads::Transfers, &header, 64),
            Err(HaFrameError::NegativeSize(-1))
        );
        let mut header = 0i64.to_be_bytes().to_vec();
        header.extend(i32::MAX.to_be_bytes());
        // Only the header is present: the size is refused, not waited for.
        assert_eq!(
            decode_ha(HaReads::Transfers, &header, 1 << 20),
            Err(HaFrameError::BodyTooLarge {
                size: i32::MAX as u64,
                max: 1 << 20
            })
        );
    }
}
