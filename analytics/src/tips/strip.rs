//! Photos from the public are kept without their metadata: a phone's JPEG
//! carries the GPS position of the reporter's home in its EXIF block, and
//! the office needs the picture, not where its taker lives.
//!
//! JPEG: every APPn segment but JFIF (APP0) and Adobe colour (APP14) is
//! dropped, and so are comments; the image data is copied as it is. PNG:
//! `eXIf`, `tEXt`, `zTXt`, `iTXt` and `tIME` chunks are dropped. Anything
//! else is refused: a format that cannot be cleaned is not stored.

/// Why a photo was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StripError {
    /// Neither JPEG nor PNG.
    #[error("only JPEG and PNG photos are accepted")]
    Format,
    /// The file ends or is malformed where a segment or chunk should be.
    #[error("the photo is damaged ({0})")]
    Damaged(&'static str),
}

/// The photo without metadata, and its content type.
pub fn strip(bytes: &[u8]) -> Result<(Vec<u8>, &'static str), StripError> {
    if bytes.starts_with(&[0xFF, 0xD8]) {
        return strip_jpeg(bytes).map(|b| (b, "image/jpeg"));
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return strip_png(bytes).map(|b| (b, "image/png"));
    }
    Err(StripError::Format)
}

fn strip_jpeg(b: &[u8]) -> Result<Vec<u8>, StripError> {
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(&b[..2]);
    let mut i = 2;
    loop {
        if i + 4 > b.len() || b[i] != 0xFF {
            return Err(StripError::Damaged("a segment marker is missing"));
        }
        let marker = b[i + 1];
        if marker == 0xFF {
            i += 1; // fill byte
            continue;
        }
        if marker == 0xD9 {
            out.extend_from_slice(&b[i..i + 2]);
            return Ok(out);
        }
        let len = usize::from(u16::from_be_bytes([b[i + 2], b[i + 3]]));
        if len < 2 || i + 2 + len > b.len() {
            return Err(StripError::Damaged("a segment runs past the end"));
        }
        let segment = &b[i..i + 2 + len];
        let metadata = matches!(marker, 0xE1..=0xED | 0xEF | 0xFE);
        if !metadata {
            out.extend_from_slice(segment);
        }
        i += 2 + len;
        if marker == 0xDA {
            // Start of scan: the entropy-coded data runs to the end marker.
            out.extend_from_slice(&b[i..]);
            return Ok(out);
        }
    }
}

fn strip_png(b: &[u8]) -> Result<Vec<u8>, StripError> {
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(&b[..8]);
    let mut i = 8;
    while i < b.len() {
        if i + 12 > b.len() {
            return Err(StripError::Damaged("a chunk header is cut"));
        }
        let len = u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]) as usize;
        let end = i
            .checked_add(12)
            .and_then(|x| x.checked_add(len))
            .filter(|&e| e <= b.len())
            .ok_or(StripError::Damaged("a chunk runs past the end"))?;
        let kind = &b[i + 4..i + 8];
        if !matches!(kind, b"eXIf" | b"tEXt" | b"zTXt" | b"iTXt" | b"tIME") {
            out.extend_from_slice(&b[i..end]);
        }
        if kind == b"IEND" {
            return Ok(out);
        }
        i = end;
    }
    Err(StripError::Damaged("no IEND chunk"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A JPEG skeleton: SOI, JFIF APP0, an EXIF APP1 with a GPS tag, a
    /// comment, a quantisation table, SOS with data, EOI.
    pub(crate) fn jpeg_with_gps() -> Vec<u8> {
        let mut b = vec![0xFF, 0xD8];
        b.extend([0xFF, 0xE0, 0x00, 0x07, b'J', b'F', b'I', b'F', 0]);
        let exif = b"Exif\0\0GPSLatitude 31.2304N GPSLongitude 121.4737E";
        b.extend([0xFF, 0xE1]);
        b.extend(((exif.len() + 2) as u16).to_be_bytes());
        b.extend(exif);
        b.extend([0xFF, 0xFE, 0x00, 0x06, b'h', b'o', b'm', b'e']);
        b.extend([0xFF, 0xDB, 0x00, 0x04, 0x00, 0x01]);
        b.extend([0xFF, 0xDA, 0x00, 0x03, 0x01, 0x12, 0x34, 0x56]);
        b.extend([0xFF, 0xD9]);
        b
    }

    #[test]
    fn a_jpeg_loses_its_exif_and_comment_and_keeps_its_image() {
        let (clean, kind) = strip(&jpeg_with_gps()).unwrap();
        assert_eq!(kind, "image/jpeg");
        let text = String::from_utf8_lossy(&clean);
        assert!(!text.contains("GPS") && !text.contains("Exif") && !text.contains("home"));
        assert!(text.contains("JFIF"));
        assert!(clean.ends_with(&[0x12, 0x34, 0x56, 0xFF, 0xD9]));
    }

    #[test]
    fn a_png_loses_its_text_and_exif_chunks() {
        let chunk = |kind: &[u8], data: &[u8]| {
            let mut c = (data.len() as u32).to_be_bytes().to_vec();
            c.extend(kind);
            c.extend(data);
            c.extend([0, 0, 0, 0]);
            c
        };
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend(chunk(b"IHDR", &[0; 13]));
        png.extend(chunk(b"eXIf", b"GPS 31N"));
        png.extend(chunk(b"tEXt", b"Author\0me"));
        png.extend(chunk(b"IDAT", &[1, 2, 3]));
        png.extend(chunk(b"IEND", &[]));
        let (clean, kind) = strip(&png).unwrap();
        assert_eq!(kind, "image/png");
        let text = String::from_utf8_lossy(&clean);
        assert!(!text.contains("GPS") && !text.contains("Author"));
        assert!(text.contains("IDAT") && text.contains("IEND"));
    }

    #[test]
    fn other_formats_and_damaged_files_are_refused() {
        assert_eq!(strip(b"GIF89a...."), Err(StripError::Format));
        let mut cut = jpeg_with_gps();
        cut.truncate(12);
        assert!(matches!(strip(&cut), Err(StripError::Damaged(_))));
        assert!(matches!(
            strip(&[0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF]),
            Err(StripError::Damaged(_))
        ));
    }
}
