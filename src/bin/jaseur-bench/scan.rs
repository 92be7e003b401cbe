//! Cheap XML for the receiving side: top-level elements found by scanning
//! for `<` and `>`, looked into by substring.
/// Cuts a stream of top-level elements (the stanzas of an established
/// stream, after its header) into whole elements, keeping only the
/// unfinished one buffered. It does not check XML: it assumes what
/// servers send, where `>` in attribute values is escaped.
#[derive(Default)]
pub struct Splitter {
    buf: Vec<u8>,
    /// Where scanning resumes.
    pos: usize,
    /// Open elements of the current stanza.
    depth: usize,
    /// Where the current stanza starts.
    start: usize,
}

/// Whether the stream goes on after what was fed.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    Open,
    /// `</stream:stream>` came.
    Closed,
}

impl Splitter {
    /// Bytes buffered (an unfinished stanza).
    #[cfg(test)]
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Add `data`, calling `stanza` for every element it completes.
    pub fn feed(&mut self, data: &[u8], mut stanza: impl FnMut(&[u8])) -> Flow {
        self.buf.extend_from_slice(data);
        let buf = &self.buf;
        let (mut pos, mut depth, mut start) = (self.pos, self.depth, self.start);
        // Bytes handled for good: dropped at the end.
        let mut done = if depth == 0 { pos } else { start };
        let mut flow = Flow::Open;
        while let Some(lt) = buf[pos..].iter().position(|&b| b == b'<') {
            let lt = pos + lt;
            if depth == 0 {
                done = lt; // whitespace between stanzas
            }
            let Some(gt) = buf[lt + 1..].iter().position(|&b| b == b'>') else {
                pos = lt; // an unfinished tag: scan it again with more data
                break;
            };
            let gt = lt + 1 + gt;
            pos = gt + 1;
            match buf.get(lt + 1) {
                Some(b'/') => {
                    if depth == 0 {
                        flow = Flow::Closed;
                        done = pos;
                        break;
                    }
                    depth -= 1;
                    if depth == 0 {
                        stanza(&buf[start..pos]);
                        done = pos;
                    }
                }
                Some(b'?') | Some(b'!') => {
                    if depth == 0 {
                        done = pos;
                    }
                }
                _ => {
                    if depth == 0 {
                        start = lt;
                    }
                    if buf[gt - 1] == b'/' {
                        if depth == 0 {
                            stanza(&buf[lt..pos]);
                            done = pos;
                        }
                    } else {
                        depth += 1;
                    }
                }
            }
        }
        if depth == 0 && !buf[pos..].contains(&b'<') {
            // Only text (keepalive whitespace) is left.
            pos = buf.len();
            done = pos;
        }
        self.buf.drain(..done);
        self.pos = pos - done;
        self.start = start.saturating_sub(done);
        self.depth = depth;
        flow
    }
}

/// Where `needle` starts in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    let first = needle[0];
    let last = haystack.len() - needle.len();
    let mut i = 0;
    while i <= last {
        let at = haystack[i..=last].iter().position(|&b| b == first)?;
        i += at;
        if &haystack[i..i + needle.len()] == needle {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// The start tag of an element (up to its first `>`).
pub fn start_tag(element: &[u8]) -> &[u8] {
    match element.iter().position(|&b| b == b'>') {
        Some(end) => &element[..=end],
        None => element,
    }
}

/// Whether the start tag has `name='value'` (either quote style).
pub fn has_attr(tag: &[u8], name: &str, value: &str) -> bool {
    find(tag, format!(" {name}='{value}'").as_bytes()).is_some()
        || find(tag, format!(" {name}=\"{value}\"").as_bytes()).is_some()
}

/// Whether the element has a `<status code='CODE'/>` (either quote style).
pub fn has_status(element: &[u8], code: &str) -> bool {
    find(element, format!("code='{code}'").as_bytes()).is_some()
        || find(element, format!("code=\"{code}\"").as_bytes()).is_some()
}

/// The start of an element, for error messages.
pub fn snippet(element: &[u8]) -> String {
    String::from_utf8_lossy(&element[..element.len().min(400)]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&str]) -> (Vec<String>, Flow, usize) {
        let mut s = Splitter::default();
        let mut out = Vec::new();
        let mut flow = Flow::Open;
        for c in chunks {
            flow = s.feed(c.as_bytes(), |e| {
                out.push(String::from_utf8(e.to_vec()).expect("utf-8"))
            });
        }
        (out, flow, s.buffered())
    }

    #[test]
    fn cuts_stanzas_whatever_the_reads() {
        let stream = "<presence from='a'/> <message type='groupchat'><body>jb 0 1 2</body>\
                      <stanza-id xmlns='urn:xmpp:sid:0' id='x'/></message>\n\
                      <iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>";
        let whole = split(&[stream]);
        assert_eq!(
            whole.0,
            vec![
                "<presence from='a'/>".to_owned(),
                "<message type='groupchat'><body>jb 0 1 2</body>\
                 <stanza-id xmlns='urn:xmpp:sid:0' id='x'/></message>"
                    .to_owned(),
                "<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>".to_owned(),
            ]
        );
        assert_eq!(whole.1, Flow::Open);
        assert_eq!(whole.2, 0);
        // The same bytes one at a time, and cut at every position.
        let bytes: Vec<String> = stream.chars().map(String::from).collect();
        let refs: Vec<&str> = bytes.iter().map(String::as_str).collect();
        assert_eq!(split(&refs).0, whole.0);
        for cut in 1..stream.len() {
            let (a, b) = stream.split_at(cut);
            assert_eq!(split(&[a, b]).0, whole.0, "cut at {cut}");
        }
    }

    #[test]
    fn keeps_only_the_unfinished_stanza() {
        let (out, flow, buffered) = split(&["<message><body>hel", "lo</bo"]);
        assert!(out.is_empty());
        assert_eq!(flow, Flow::Open);
        assert_eq!(buffered, "<message><body>hello</bo".len());
        let (out, _, buffered) = split(&["<a/>   ", "  "]);
        assert_eq!(out, vec!["<a/>".to_owned()]);
        assert_eq!(buffered, 0);
    }

    #[test]
    fn sees_the_end_of_the_stream() {
        let (out, flow, _) = split(&["<a/><stream:error><x/></stream:error></stream:stream>"]);
        assert_eq!(out.len(), 2);
        assert_eq!(flow, Flow::Closed);
    }

    #[test]
    fn finds_attributes_and_status_codes() {
        let p = b"<presence from=\"r@c/n\" type=\"error\"><x><status code=\"110\"/></x></presence>";
        assert!(has_attr(start_tag(p), "type", "error"));
        assert!(!has_attr(start_tag(p), "type", "get"));
        assert!(has_status(p, "110"));
        assert!(!has_status(p, "201"));
        assert_eq!(find(b"abcabd", b"abd"), Some(3));
        assert_eq!(find(b"ab", b"abc"), None);
    }
}
