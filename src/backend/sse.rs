//! An incremental Server-Sent Events decoder (the WHATWG event-stream format).
//!
//! Bytes are fed as they arrive, split anywhere; complete events come out. Lines may
//! end in LF, CRLF or CR (also split across feeds); `:` lines are comments; several
//! `data:` lines join with `\n`; `event:` names are kept; an event is dispatched at a
//! blank line. At the end of the stream a pending event without its blank line is
//! still emitted (servers that close right after the last `data:` line).

use memchr::memchr2;

/// One decoded event. `data` is the joined `data:` payload.
#[derive(Debug, PartialEq, Eq)]
pub struct SseEvent<'a> {
    /// The `event:` field, empty if absent.
    pub event: &'a str,
    /// The data payload (lines joined with `\n`).
    pub data: &'a [u8],
}

/// Incremental decoder; keeps a partial line and the event being built.
#[derive(Debug, Default)]
pub struct SseDecoder {
    line: Vec<u8>,
    data: Vec<u8>,
    event: String,
    has_data: bool,
    skip_lf: bool,
    /// Count of non-SSE lines seen (neither field, comment nor blank).
    pub junk_lines: u32,
    /// The first such line (truncated), for error messages.
    pub first_junk: Option<String>,
}

impl SseDecoder {
    /// A new decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; calls `on_event` for every event completed by them.
    pub fn feed<E>(
        &mut self,
        mut bytes: &[u8],
        on_event: &mut impl FnMut(SseEvent<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        if self.skip_lf {
            if let Some(b'\n') = bytes.first() {
                bytes = &bytes[1..];
            }
            self.skip_lf = false;
        }
        while !bytes.is_empty() {
            let Some(pos) = memchr2(b'\n', b'\r', bytes) else {
                self.line.extend_from_slice(bytes);
                return Ok(());
            };
            let is_cr = bytes[pos] == b'\r';
            let rest_start = if is_cr && bytes.get(pos + 1) == Some(&b'\n') {
                pos + 2
            } else {
                pos + 1
            };
            if is_cr && pos + 1 == bytes.len() {
                self.skip_lf = true;
            }
            if self.line.is_empty() {
                // The common case, a whole `data: ...` line and the blank line that
                // ends its event in this read: hand the value over without copying.
                let rest = &bytes[rest_start..];
                let blank = match rest {
                    [b'\n', ..] => 1,
                    [b'\r', b'\n', ..] => 2,
                    [b'\r', _, ..] => 1,
                    _ => 0,
                };
                let whole = data_value(&bytes[..pos]).filter(|_| blank > 0 && !self.has_data);
                if let Some(value) = whole {
                    let r = on_event(SseEvent {
                        event: &self.event,
                        data: value,
                    });
                    self.event.clear();
                    r?;
                    bytes = &rest[blank..];
                    continue;
                }
                self.process_line(&bytes[..pos], on_event)?;
            } else {
                self.line.extend_from_slice(&bytes[..pos]);
                let line = std::mem::take(&mut self.line);
                self.process_line(&line, on_event)?;
                self.line = line;
                self.line.clear();
            }
            bytes = &bytes[rest_start..];
        }
        Ok(())
    }

    /// Ends the stream: emits a pending event that lacked its terminating blank line.
    pub fn finish<E>(
        &mut self,
        on_event: &mut impl FnMut(SseEvent<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.process_line(&line, on_event)?;
        }
        self.dispatch(on_event)
    }

    /// Whether a partial line or event is pending (bytes not yet turned into events).
    pub fn has_pending(&self) -> bool {
        !self.line.is_empty() || self.has_data
    }

    fn process_line<E>(
        &mut self,
        line: &[u8],
        on_event: &mut impl FnMut(SseEvent<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        if line.is_empty() {
            return self.dispatch(on_event);
        }
        if line[0] == b':' {
            return Ok(());
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"event" => self.event = String::from_utf8_lossy(value).into_owned(),
            b"id" | b"retry" => {}
            _ => {
                self.junk_lines += 1;
                if self.first_junk.is_none() {
                    let s = String::from_utf8_lossy(&line[..line.len().min(120)]).into_owned();
                    self.first_junk = Some(s);
                }
            }
        }
        Ok(())
    }

    fn dispatch<E>(
        &mut self,
        on_event: &mut impl FnMut(SseEvent<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        if self.has_data {
            let r = on_event(SseEvent {
                event: &self.event,
                data: &self.data,
            });
            self.data.clear();
            self.event.clear();
            self.has_data = false;
            r
        } else {
            self.event.clear();
            Ok(())
        }
    }
}

/// The value of a `data` field line (`data: v` or `data:v`), else `None`.
fn data_value(line: &[u8]) -> Option<&[u8]> {
    let v = line.strip_prefix(b"data")?;
    match v {
        [] => Some(v),
        [b':', rest @ ..] => Some(rest.strip_prefix(b" ").unwrap_or(rest)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_split(input: &[u8], splits: &[usize]) -> Vec<(String, String)> {
        let mut d = SseDecoder::new();
        let mut out = Vec::new();
        let mut cb = |e: SseEvent<'_>| -> Result<(), ()> {
            out.push((
                e.event.to_string(),
                String::from_utf8_lossy(e.data).into_owned(),
            ));
            Ok(())
        };
        let mut start = 0;
        for &s in splits {
            d.feed(&input[start..s], &mut cb).unwrap();
            start = s;
        }
        d.feed(&input[start..], &mut cb).unwrap();
        d.finish(&mut cb).unwrap();
        out
    }

    #[test]
    fn basic_events_comments_multiline_crlf() {
        let input = b": keep-alive\r\n\r\ndata: {\"a\":1}\r\n\r\nevent: x\ndata: line1\ndata:line2\n\ndata: [DONE]\r\r";
        let got = decode_split(input, &[]);
        assert_eq!(
            got,
            vec![
                (String::new(), "{\"a\":1}".to_string()),
                ("x".to_string(), "line1\nline2".to_string()),
                (String::new(), "[DONE]".to_string()),
            ]
        );
    }

    #[test]
    fn every_split_point_gives_same_events() {
        let input: &[u8] =
            b"data: {\"x\": \"a\\nb\"}\r\n\r\n:c\r\ndata: 2\n\ndata: 3\r\rdata: [DONE]\n\n";
        let want = decode_split(input, &[]);
        assert_eq!(want.len(), 4);
        for i in 0..=input.len() {
            assert_eq!(decode_split(input, &[i]), want, "split at {i}");
            for j in i..=input.len() {
                assert_eq!(decode_split(input, &[i, j]), want, "split at {i},{j}");
            }
        }
    }

    #[test]
    fn trailing_event_without_blank_line_is_flushed() {
        assert_eq!(
            decode_split(b"data: [DONE]", &[]),
            vec![(String::new(), "[DONE]".into())]
        );
    }

    #[test]
    fn junk_lines_are_counted() {
        let mut d = SseDecoder::new();
        let mut n = 0;
        d.feed(b"{\"not\":\"sse\"}\n\n", &mut |_e| -> Result<(), ()> {
            n += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 0);
        assert_eq!(d.junk_lines, 1);
        assert!(d.first_junk.unwrap().contains("not"));
    }
}
