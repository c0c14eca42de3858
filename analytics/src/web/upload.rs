//! Reading a `multipart/form-data` body (RFC 7578), the way a browser sends
//! a form with a file: enough for the photo form, with no dependency and
//! no copy of the file. Anything malformed is an error naming what is
//! wrong; nothing here panics on what a client sends.

/// One part of a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part<'a> {
    /// The field's name.
    pub name: String,
    /// The file name the browser gave, for a file field.
    pub filename: Option<String>,
    /// The part's declared type.
    pub content_type: Option<String>,
    /// The part's bytes.
    pub body: &'a [u8],
}

/// The boundary of a `multipart/form-data` content type.
pub fn boundary(content_type: &str) -> Option<String> {
    let mut params = content_type.split(';');
    let kind = params.next()?.trim();
    if !kind.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let v = v.trim().trim_matches('"');
        (!v.is_empty() && v.len() <= 70).then(|| v.to_owned())
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A header parameter (`name="photo"`) of a `Content-Disposition` line.
fn param(line: &str, key: &str) -> Option<String> {
    line.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(key)
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// The parts of `body`, sent with `boundary`.
pub fn parts<'a>(body: &'a [u8], boundary: &str) -> Result<Vec<Part<'a>>, String> {
    let delimiter = format!("--{boundary}").into_bytes();
    let start = find(body, &delimiter).ok_or("the form has no part")?;
    let mut rest = &body[start + delimiter.len()..];
    let next = format!("\r\n--{boundary}").into_bytes();
    let mut out = Vec::new();
    loop {
        if rest.starts_with(b"--") {
            return Ok(out);
        }
        rest = rest
            .strip_prefix(b"\r\n")
            .ok_or("a part's boundary line does not end")?;
        let head_end = find(rest, b"\r\n\r\n").ok_or("a part's headers do not end")?;
        let head =
            std::str::from_utf8(&rest[..head_end]).map_err(|_| "a part's headers are not text")?;
        let data = &rest[head_end + 4..];
        let end = find(data, &next).ok_or("the form ends without its closing boundary")?;
        let (mut name, mut filename, mut content_type) = (None, None, None);
        for line in head.split("\r\n") {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            if k.trim().eq_ignore_ascii_case("content-disposition") {
                name = param(v, "name");
                filename = param(v, "filename");
            } else if k.trim().eq_ignore_ascii_case("content-type") {
                content_type = Some(v.trim().to_owned());
            }
        }
        out.push(Part {
            name: name.ok_or("a part has no field name")?,
            filename,
            content_type,
            body: &data[..end],
        });
        rest = &data[end + next.len()..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORM: &[u8] = b"--XyZ\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"a.png\"\r\n\
Content-Type: image/png\r\n\r\n\x89PNG\r\n--X\r\n--XyZ\r\nContent-Disposition: form-data; name=\"n\"\r\n\r\n1\r\n--XyZ--\r\n";

    #[test]
    fn a_browsers_form_gives_its_file_and_fields() {
        assert_eq!(
            boundary("multipart/form-data; boundary=\"XyZ\"").as_deref(),
            Some("XyZ")
        );
        let p = parts(FORM, "XyZ").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].name, "photo");
        assert_eq!(p[0].filename.as_deref(), Some("a.png"));
        assert_eq!(p[0].content_type.as_deref(), Some("image/png"));
        assert_eq!(
            p[0].body, b"\x89PNG\r\n--X",
            "a near-boundary inside the file stays"
        );
        assert_eq!((p[1].name.as_str(), p[1].body), ("n", &b"1"[..]));
    }

    #[test]
    fn a_cut_or_foreign_body_is_an_error_not_a_panic() {
        assert_eq!(boundary("application/x-www-form-urlencoded"), None);
        for cut in 0..FORM.len() - 8 {
            let _ = parts(&FORM[..cut], "XyZ");
        }
        assert!(parts(&FORM[..60], "XyZ").is_err());
        assert!(parts(b"no boundary here", "XyZ").is_err());
    }
}
