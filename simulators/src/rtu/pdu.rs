//! The slave's side of a Modbus PDU, sans-IO: request bytes to a
//! [`tokio_modbus::Request`], a [`Response`] or exception back to bytes.
//!
//! tokio-modbus keeps its codecs private, so the simulator carries this small
//! one; it covers the functions a meter or pile serves (0x01–0x06, 0x0F,
//! 0x10). The gateway's encoder of the same frames
//! (`gridwatch_gateway::bus::modbus_rtu::frame`) is tested against it.

use std::borrow::Cow;
use tokio_modbus::{ExceptionCode, Request, Response};

fn be(data: &[u8], at: usize) -> Result<u16, ExceptionCode> {
    data.get(at..at + 2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .ok_or(ExceptionCode::IllegalDataValue)
}

/// The request in `pdu` (function code first), or the exception a slave
/// answers a malformed or unsupported one with.
pub fn decode_request(pdu: &[u8]) -> Result<Request<'static>, ExceptionCode> {
    let (&function, data) = pdu.split_first().ok_or(ExceptionCode::IllegalFunction)?;
    let fixed = |len: usize| {
        if data.len() == len {
            Ok(())
        } else {
            Err(ExceptionCode::IllegalDataValue)
        }
    };
    match function {
        0x01..=0x06 => {
            fixed(4)?;
            let (a, b) = (be(data, 0)?, be(data, 2)?);
            Ok(match function {
                0x01 => Request::ReadCoils(a, b),
                0x02 => Request::ReadDiscreteInputs(a, b),
                0x03 => Request::ReadHoldingRegisters(a, b),
                0x04 => Request::ReadInputRegisters(a, b),
                0x05 => match b {
                    0xFF00 => Request::WriteSingleCoil(a, true),
                    0x0000 => Request::WriteSingleCoil(a, false),
                    _ => return Err(ExceptionCode::IllegalDataValue),
                },
                _ => Request::WriteSingleRegister(a, b),
            })
        }
        0x0F | 0x10 => {
            let (start, count) = (be(data, 0)?, usize::from(be(data, 2)?));
            let bytes = data.get(5..).ok_or(ExceptionCode::IllegalDataValue)?;
            let want = if function == 0x0F {
                count.div_ceil(8)
            } else {
                2 * count
            };
            if count == 0 || usize::from(data[4]) != want || bytes.len() != want {
                return Err(ExceptionCode::IllegalDataValue);
            }
            Ok(if function == 0x0F {
                let bits = (0..count).map(|i| bytes[i / 8] & (1 << (i % 8)) != 0);
                Request::WriteMultipleCoils(start, Cow::Owned(bits.collect()))
            } else {
                let words = bytes
                    .chunks_exact(2)
                    .map(|w| u16::from_be_bytes([w[0], w[1]]));
                Request::WriteMultipleRegisters(start, Cow::Owned(words.collect()))
            })
        }
        _ => Err(ExceptionCode::IllegalFunction),
    }
}

fn packed_bits(bits: &[bool], out: &mut Vec<u8>) -> Result<(), ExceptionCode> {
    let n = u8::try_from(bits.len().div_ceil(8)).map_err(|_| ExceptionCode::ServerDeviceFailure)?;
    out.push(n);
    let start = out.len();
    out.resize(start + usize::from(n), 0);
    for (i, &on) in bits.iter().enumerate() {
        out[start + i / 8] |= u8::from(on) << (i % 8);
    }
    Ok(())
}

fn words(words: &[u16], out: &mut Vec<u8>) -> Result<(), ExceptionCode> {
    let n = u8::try_from(2 * words.len()).map_err(|_| ExceptionCode::ServerDeviceFailure)?;
    out.push(n);
    for w in words {
        out.extend_from_slice(&w.to_be_bytes());
    }
    Ok(())
}

/// The PDU of `response` (function code first). A response the simulator
/// cannot put on the wire becomes a server-device-failure exception.
pub fn encode_response(response: &Response) -> Result<Vec<u8>, ExceptionCode> {
    let mut out = vec![response.function_code().value()];
    let pair = |out: &mut Vec<u8>, a: u16, b: u16| {
        out.extend_from_slice(&a.to_be_bytes());
        out.extend_from_slice(&b.to_be_bytes());
    };
    match response {
        Response::ReadCoils(bits) | Response::ReadDiscreteInputs(bits) => {
            packed_bits(bits, &mut out)?
        }
        Response::ReadHoldingRegisters(w) | Response::ReadInputRegisters(w) => words(w, &mut out)?,
        Response::WriteSingleCoil(a, on) => pair(&mut out, *a, if *on { 0xFF00 } else { 0 }),
        Response::WriteMultipleCoils(a, n) | Response::WriteMultipleRegisters(a, n) => {
            pair(&mut out, *a, *n)
        }
        Response::WriteSingleRegister(a, v) => pair(&mut out, *a, *v),
        _ => return Err(ExceptionCode::ServerDeviceFailure),
    }
    Ok(out)
}

/// The PDU of an exception to `function`.
pub fn encode_exception(function: u8, code: ExceptionCode) -> Vec<u8> {
    vec![function | 0x80, u8::from(code)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridwatch_gateway::bus::modbus_rtu::frame::{encode, RtuRequest};
    use gridwatch_gateway::bus::ReadRequest;
    use gridwatch_gateway::profile::Function;

    #[test]
    fn the_gateways_requests_decode_to_what_it_meant() {
        let read = RtuRequest::Read(ReadRequest {
            function: Function::Input,
            start: 30,
            count: 12,
        });
        let adu = encode(4, &read);
        assert_eq!(
            decode_request(&adu[1..adu.len() - 2]),
            Ok(Request::ReadInputRegisters(30, 12))
        );
        let coil = encode(
            4,
            &RtuRequest::WriteCoil {
                address: 2,
                on: true,
            },
        );
        assert_eq!(
            decode_request(&coil[1..coil.len() - 2]),
            Ok(Request::WriteSingleCoil(2, true))
        );
    }

    #[test]
    fn multi_writes_decode_and_malformed_ones_are_refused() {
        assert_eq!(
            decode_request(&[0x0F, 0, 1, 0, 3, 1, 0b101]),
            Ok(Request::WriteMultipleCoils(
                1,
                Cow::Owned(vec![true, false, true])
            ))
        );
        assert_eq!(
            decode_request(&[0x10, 0, 9, 0, 1, 2, 0x12, 0x34]),
            Ok(Request::WriteMultipleRegisters(9, Cow::Owned(vec![0x1234])))
        );
        assert_eq!(
            decode_request(&[0x10, 0, 9, 0, 2, 2, 0x12, 0x34]),
            Err(ExceptionCode::IllegalDataValue)
        );
        assert_eq!(
            decode_request(&[0x03, 0, 1]),
            Err(ExceptionCode::IllegalDataValue)
        );
        assert_eq!(
            decode_request(&[0x05, 0, 1, 0x12, 0]),
            Err(ExceptionCode::IllegalDataValue)
        );
        assert_eq!(
            decode_request(&[0x2B, 0x0E]),
            Err(ExceptionCode::IllegalFunction)
        );
        assert_eq!(decode_request(&[]), Err(ExceptionCode::IllegalFunction));
    }

    #[test]
    fn responses_encode_as_the_spec_shows() {
        assert_eq!(
            encode_response(&Response::ReadHoldingRegisters(vec![0x022B, 0, 0x64])),
            Ok(vec![0x03, 0x06, 0x02, 0x2B, 0, 0, 0, 0x64])
        );
        assert_eq!(
            encode_response(&Response::ReadCoils(vec![
                true, false, true, true, false, false, false, false, true
            ])),
            Ok(vec![0x01, 2, 0b0000_1101, 0b1])
        );
        assert_eq!(
            encode_response(&Response::WriteSingleCoil(0xAC, true)),
            Ok(vec![0x05, 0, 0xAC, 0xFF, 0])
        );
        assert_eq!(
            encode_exception(0x03, ExceptionCode::IllegalDataAddress),
            vec![0x83, 2]
        );
    }
}
