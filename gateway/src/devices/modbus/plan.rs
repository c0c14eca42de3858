//! Request planning: which Modbus reads fetch a profile's registers.
//!
//! Every request costs a round trip, and on RS-485 a turnaround and an
//! inter-frame silence too, so registers of one table that sit close together
//! are read in one request (docs/gateway.md). Two limits apply: a request may
//! read at most [`MAX_READ_REGISTERS`] registers (the Modbus PDU limit for
//! functions 0x03 and 0x04), and it may bridge at most `max_gap` unused
//! registers, because some devices refuse reads of unmapped addresses. Pure
//! code: it sees only addresses and lengths.

use crate::bus::ReadRequest;
use crate::profile::{Function, Profile};

/// Most registers one read of holding or input registers may return; it
/// lives with the profile, which checks a block's `max_read` against it.
pub use crate::profile::MAX_READ_REGISTERS;

/// Most coils or discrete inputs one read may return (functions 0x01, 0x02).
pub const MAX_READ_BITS: u16 = 2000;

/// The most one request may read from `function`'s table.
pub fn max_read(function: Function) -> u16 {
    if function.is_bits() {
        MAX_READ_BITS
    } else {
        MAX_READ_REGISTERS
    }
}

/// Registers some value occupies: the planner's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Table.
    pub function: Function,
    /// First register.
    pub start: u16,
    /// Number of registers (1..=125).
    pub len: u16,
}

/// Merges spans into as few requests as the limits allow. Spans may come in
/// any order and may overlap; requests come out sorted by table and address.
pub fn coalesce(spans: impl IntoIterator<Item = Span>, max_gap: u16) -> Vec<ReadRequest> {
    let mut spans: Vec<Span> = spans.into_iter().filter(|s| s.len > 0).collect();
    spans.sort_by_key(|s| (s.function, s.start, s.len));
    let mut out: Vec<ReadRequest> = Vec::new();
    for s in spans {
        let s_end = u32::from(s.start) + u32::from(s.len);
        if let Some(last) = out.last_mut() {
            let last_start = u32::from(last.start);
            let last_end = last_start + u32::from(last.count);
            let gap = u32::from(s.start).saturating_sub(last_end);
            let merged_end = last_end.max(s_end);
            if last.function == s.function
                && gap <= u32::from(max_gap)
                && merged_end - last_start <= u32::from(max_read(s.function))
            {
                // Fits: merged_end - last_start <= 125.
                last.count = (merged_end - last_start) as u16;
                continue;
            }
        }
        out.push(ReadRequest {
            function: s.function,
            start: s.start,
            count: s.len,
        });
    }
    out
}

/// Like [`coalesce`], but never splits a block (the device level, or one
/// socket) across requests when the block fits in one: the values of one
/// reading then come from one response, a consistent snapshot. A socket whose
/// relay and current came from two responses could look live while off.
/// Blocks must come in ascending address order.
pub fn coalesce_blocks<B>(blocks: impl IntoIterator<Item = B>, max_gap: u16) -> Vec<ReadRequest>
where
    B: IntoIterator<Item = Span>,
{
    let mut out: Vec<ReadRequest> = Vec::new();
    for block in blocks {
        for r in coalesce(block, max_gap) {
            let last = out.iter_mut().rev().find(|o| o.function == r.function);
            if let Some(last) = last {
                let gap_ok = u32::from(r.start) >= last.end()
                    && u32::from(r.start) - last.end() <= u32::from(max_gap);
                let merged_len = r.end().max(last.end()) - u32::from(last.start);
                if gap_ok && merged_len <= u32::from(max_read(r.function)) {
                    // Fits: merged_len <= 125.
                    last.count = merged_len as u16;
                    continue;
                }
            }
            out.push(r);
        }
    }
    out.sort_by_key(|r| (r.function, r.start));
    out
}

/// Reads for the device-level registers (check registers included).
pub fn device_requests(profile: &Profile, max_gap: u16) -> Vec<ReadRequest> {
    coalesce(
        profile.registers.iter().map(|r| Span {
            function: r.function,
            start: r.address,
            len: r.len(),
        }),
        max_gap,
    )
}

/// Reads for the registers of channels `1..=count`, each channel's block
/// whole where it fits. Channels above the profile's maximum are not planned.
pub fn channel_requests(profile: &Profile, count: u16, max_gap: u16) -> Vec<ReadRequest> {
    let Some(ch) = &profile.channel else {
        return Vec::new();
    };
    let count = count.min(ch.max_count());
    coalesce_blocks(
        (1..=count).map(|n| {
            let block = ch.block_start(n);
            ch.registers.iter().map(move |r| Span {
                function: r.function,
                start: block + r.address,
                len: r.len(),
            })
        }),
        max_gap,
    )
}

/// Requests one poll needs when the device has as many channels as the
/// profile allows: (device-level, channel) counts, for `check` summaries.
pub fn requests_per_poll(profile: &Profile, max_gap: u16) -> (usize, usize) {
    let max = profile.channel.as_ref().map_or(0, |c| c.max_count());
    (
        device_requests(profile, max_gap).len(),
        channel_requests(profile, max, max_gap).len(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::ProfileLibrary;

    fn span(start: u16, len: u16) -> Span {
        Span {
            function: Function::Holding,
            start,
            len,
        }
    }

    fn req(start: u16, count: u16) -> ReadRequest {
        ReadRequest {
            function: Function::Holding,
            start,
            count,
        }
    }

    #[test]
    fn adjacent_registers_become_one_request() {
        let plan = coalesce([span(0, 1), span(1, 1), span(2, 2), span(4, 1)], 0);
        assert_eq!(plan, vec![req(0, 5)]);
    }

    #[test]
    fn gaps_up_to_the_limit_are_read_through() {
        assert_eq!(coalesce([span(0, 1), span(9, 1)], 8), vec![req(0, 10)]);
        assert_eq!(
            coalesce([span(0, 1), span(10, 1)], 8),
            vec![req(0, 1), req(10, 1)]
        );
    }

    #[test]
    fn a_request_never_exceeds_125_registers() {
        let plan = coalesce((0..200).map(|a| span(a, 1)), 8);
        assert_eq!(plan, vec![req(0, 125), req(125, 75)]);
        // A two-register value is never split across requests.
        let plan = coalesce([span(0, 1), span(124, 2)], 200);
        assert_eq!(plan, vec![req(0, 1), req(124, 2)]);
    }

    #[test]
    fn tables_are_never_mixed() {
        let input = Span {
            function: Function::Input,
            start: 1,
            len: 1,
        };
        let plan = coalesce([span(0, 1), input, span(2, 1)], 8);
        assert_eq!(plan.len(), 2);
        assert_eq!(plan[0], req(0, 3));
        assert_eq!(plan[1].function, Function::Input);
    }

    #[test]
    fn unsorted_and_overlapping_spans_are_merged() {
        let plan = coalesce([span(10, 2), span(0, 4), span(2, 2), span(11, 1)], 0);
        assert_eq!(plan, vec![req(0, 4), req(10, 2)]);
    }

    #[test]
    fn blocks_stay_whole_when_they_fit() {
        // Plain coalescing would fill the first request up to 125 and split
        // the second block; block planning starts a new request instead.
        let blocks = [vec![span(0, 60)], vec![span(62, 2), span(66, 60)]];
        assert_eq!(
            coalesce_blocks(blocks.clone(), 8),
            vec![req(0, 60), req(62, 64)]
        );
        assert_eq!(coalesce(blocks.concat(), 8), vec![req(0, 64), req(66, 60)]);
    }

    #[test]
    fn bit_tables_take_up_to_2000_per_request() {
        let coil = |start| Span {
            function: Function::Coils,
            start,
            len: 1,
        };
        let plan = coalesce((0..2500).map(coil), 0);
        assert_eq!(plan.len(), 2);
        assert_eq!((plan[0].start, plan[0].count), (0, 2000));
        assert_eq!((plan[1].start, plan[1].count), (2000, 500));
        assert_eq!(plan[0].function, Function::Coils);
    }

    #[test]
    fn ebp12_needs_three_requests_for_twelve_sockets() {
        let p = ProfileLibrary::built_in().get("gridwatch-ebp12").unwrap();
        assert_eq!(device_requests(&p, 8), vec![req(0, 5)]);
        // Sockets 1..=6 end at 100 + 5*20 + 12 = 212; socket 7 would pass 125.
        assert_eq!(
            channel_requests(&p, 12, 8),
            vec![req(100, 113), req(220, 113)]
        );
        assert_eq!(channel_requests(&p, 1, 8), vec![req(100, 13)]);
        assert_eq!(channel_requests(&p, 99, 8).len(), 2, "clamped to max_count");
        assert_eq!(requests_per_poll(&p, 8), (1, 2));
        // Without gap bridging every socket is its own request.
        assert_eq!(channel_requests(&p, 12, 0).len(), 12);
    }
}
